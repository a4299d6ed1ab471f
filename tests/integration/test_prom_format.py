#!/usr/bin/python3
"""/metrics text (gateway/prom.c) against Prometheus's own parser and linter.

gw-prom-dump prints the text for a snapshot whose LoRa rejection reasons and
sink names are hostile (quotes, backslashes, newlines, invalid UTF-8,
Chinese); `promtool check metrics` (Debian's prometheus package) must accept
it with no parse error and no lint problem (exit 0). Special float values go
through too, and a corrupted copy must be refused, so the check can fail.
Besides, a small reader here checks what promtool does not: every family is
written once with its samples together, and the hostile names come back
intact once unescaped.
"""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DUMP = os.path.join(h.BUILD_DIR, "gw-prom-dump")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

# The names tests/tools/prom_dump.c puts in the snapshot, as bytes.
HOSTILE_REASONS = [b"crc", b"bad_mic", b"quote\"in", b"back\\slash", b"new\nline", b"cr\rtab\t",
                   b"bad utf8 \xC3\x28 \xED\xA0\x80 \xF5\x80", "中文原因".encode(), b"",
                   b"\\\"\n"]
HOSTILE_SINKS = [b"hub", b"up\"link\\", "influx\n数据库".encode()]


def dump(*args):
    r = subprocess.run([DUMP, *args], capture_output=True, timeout=30)
    err = r.stderr.decode(errors="replace")
    if r.returncode != 0 or any(m in err for m in h.SANITIZER_MARKS):
        raise AssertionError(f"gw-prom-dump {' '.join(args)} exited {r.returncode}:\n{err}")
    return r.stdout


def promtool(text):
    if not os.access(PROMTOOL, os.X_OK):
        raise AssertionError("promtool not found: apt-get install prometheus "
                             "(scripts/packages.txt)")
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       timeout=60)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def expect_accepted(text, what):
    rc, out = promtool(text)
    if rc != 0:
        raise AssertionError(f"promtool check metrics refused {what} (exit {rc}):\n{out}\n"
                             f"----- the text\n{text.decode(errors='replace')}")
    h.log(f"promtool accepts {what}")


def unescape(s, quote):
    """The text format's escapes: \\\\ and \\n, and \\" in label values."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            nxt = s[i + 1]
            if nxt == "\\":
                out.append("\\")
            elif nxt == "n":
                out.append("\n")
            elif nxt == '"' and quote:
                out.append('"')
            else:
                raise AssertionError(f"unknown escape \\{nxt} in {s!r}")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_labels(s):
    """{a="x",b="y"} -> [(a, x), (b, y)], honouring escapes inside values."""
    assert s[0] == "{" and s[-1] == "}", s
    labels, i, s = [], 0, s[1:-1]
    while i < len(s):
        eq = s.index("=", i)
        name = s[i:eq]
        assert s[eq + 1] == '"', s
        j = eq + 2
        raw = []
        while s[j] != '"':
            if s[j] == "\\":
                raw.append(s[j:j + 2])
                j += 2
            else:
                raw.append(s[j])
                j += 1
        labels.append((name, unescape("".join(raw), True)))
        i = j + 1
        if i < len(s):
            assert s[i] == ",", s
            i += 1
    return labels


def read_families(text):
    """family -> {"help", "type", "samples": [(labels, value)]}; asserts the grouping."""
    families, order, current = {}, [], None
    for line in text.decode("utf-8").split("\n")[:-1]:
        if line.startswith("# HELP "):
            name, help_text = line[7:].split(" ", 1)
            assert name not in families, f"family {name} written twice"
            families[name] = {"help": unescape(help_text, False), "samples": []}
            order.append(name)
            current = name
        elif line.startswith("# TYPE "):
            name, kind = line[7:].split(" ")
            assert name == current, f"TYPE {name} not right after its HELP"
            assert kind in ("counter", "gauge"), line
            families[name]["type"] = kind
        else:
            assert not line.startswith("#"), line
            brace = line.find("{")
            space = line.rindex(" ")
            name = line[:brace] if brace >= 0 else line[:space]
            assert name == current, f"sample of {name} outside its family ({current}): {line!r}"
            labels = parse_labels(line[brace:space]) if brace >= 0 else []
            families[name]["samples"].append((labels, line[space + 1:]))
    for name in order:
        assert name.startswith("campusgw_"), name
        assert ("type" in families[name]), f"{name} has no TYPE"
        assert (families[name]["type"] == "counter") == name.endswith("_total"), name
    return families


def test_hostile_snapshot(wd):
    text = dump()
    expect_accepted(text, "the hostile snapshot")
    fams = read_families(text)
    for name in ("campusgw_readings_total", "campusgw_lora_rejected_frames_total",
                 "campusgw_outbox_records", "campusgw_sink_lag_records",
                 "campusgw_dropped_records_total", "campusgw_alarms",
                 "campusgw_notifications_total", "campusgw_sensors",
                 "campusgw_process_resident_memory_bytes", "campusgw_uptime_seconds"):
        assert name in fams, f"{name} missing"
    reasons = [dict(labels)["reason"] for labels, _ in
               fams["campusgw_lora_rejected_frames_total"]["samples"]]
    # Bad UTF-8 comes back as U+FFFD, one per bad byte; everything else exactly.
    want = [r.decode("utf-8", errors="replace") for r in HOSTILE_REASONS]
    assert reasons == want, f"{reasons!r} != {want!r}"
    first = fams["campusgw_lora_rejected_frames_total"]["samples"][0]
    assert first[1] == "18446744073709551615", first
    sinks = [(dict(labels)["sink"], v) for labels, v in
             fams["campusgw_sink_lag_records"]["samples"]]
    assert sinks == [(s.decode(), v) for s, v in zip(HOSTILE_SINKS, ["0", "5", "12"])], sinks
    alarms = fams["campusgw_alarms"]["samples"]
    assert len(alarms) == 18, alarms
    assert (([("class", "trouble"), ("state", "out_of_service")], "25") in alarms), alarms
    assert (fams["campusgw_uptime_seconds"]["samples"] == [([], "3600.25")])


def test_special_values(wd):
    for uptime, spelled in (("nan", "NaN"), ("inf", "+Inf"), ("-inf", "-Inf"), ("1e-300", "1e-300")):
        text = dump("--uptime", uptime, "--extra")
        expect_accepted(text, f"uptime {uptime} and the extra family")
        fams = read_families(text)
        assert fams["campusgw_uptime_seconds"]["samples"] == [([], spelled)], text
        extra = fams["campusgw_test_values"]
        assert extra["help"] == ('Test: back\\slash, new\nline, "quotes", bad \ufffd byte, 中文.'), \
            extra["help"]
        assert [v for _, v in extra["samples"]] == ["NaN", "+Inf", "-Inf", "-0", "1e-300",
                                                     "1.5e+300", "0.1"], extra["samples"]


def test_empty_snapshot(wd):
    """A gateway with no LoRa, no sinks and no RSS reading: families without samples."""
    text = dump("--empty")
    expect_accepted(text, "the empty snapshot")
    fams = read_families(text)
    assert fams["campusgw_lora_rejected_frames_total"]["samples"] == [], text
    assert fams["campusgw_sink_lag_records"]["samples"] == [], text
    assert fams["campusgw_process_resident_memory_bytes"]["samples"] == [], text
    assert fams["campusgw_readings_total"]["samples"] == [([], "0")], text


def test_promtool_catches_breakage(wd):
    """The same check refuses broken text: it is not a check that always passes."""
    text = dump()
    broken = {
        "an unescaped quote": text.replace(b'quote\\"in', b'quote"in', 1),
        "a raw newline in a label value": text.replace(b"new\\nline", b"new\nline", 1),
        "a family written twice": text + b"# HELP campusgw_readings_total again\n"
                                         b"# TYPE campusgw_readings_total counter\n"
                                         b"campusgw_readings_total 1\n",
        "raw invalid UTF-8": text.replace(b"\xEF\xBF\xBD", b"\xFF", 1),
        "a counter without _total": text.replace(b"campusgw_readings_total",
                                                 b"campusgw_readings"),
    }
    for what, bad in broken.items():
        assert bad != text, f"the corruption '{what}' did not apply"
        rc, out = promtool(bad)
        assert rc != 0, f"promtool accepted {what}:\n{out}"
        h.log(f"promtool refuses {what} (exit {rc}): {out.strip().splitlines()[0]}")


if __name__ == "__main__":
    h.run([test_hostile_snapshot, test_special_values, test_empty_snapshot,
           test_promtool_catches_breakage])
