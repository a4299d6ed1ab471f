#!/usr/bin/python3
"""Life cycle: SIGTERM, SIGHUP reloads (valid and invalid), --check-config, a bad
config at start."""

import json
import os
import re
import subprocess

from harness import (BUILD_DIR, PREFIX, SOURCE_DIR, Collector, Gateway, ModbusSlave, Mosquitto,
                     log, retained, run, site_config, telemetry_values, wait_for)

EXE = os.path.join(BUILD_DIR, "campusgw")


def body(slave_port, low_threshold=10, extra_sensor=False):
    tank2 = ('  { id = "tank-2"; kind = "tank"; profile = "p"; modbus = "bus"; unit_id = 2; '
             'interval_s = 1; },\n') if extra_sensor else ""
    return f'''
modbus = ( {{ name = "bus"; tcp = "127.0.0.1:{slave_port}"; timeout_ms = 300; }} );
profiles = {{ p = {{ points = ( {{ name = "level"; address = 0; }} ); }}; }};
sensors = (
{tank2}  {{ id = "tank-1"; kind = "tank"; profile = "p"; modbus = "bus"; unit_id = 1; interval_s = 1; }}
);
rules = (
  {{ name = "tank high"; kind = "tank"; point = "level"; above = 80; class = "supervisory"; }},
  {{ name = "tank low"; kind = "tank"; point = "level"; below = {low_threshold}; class = "supervisory"; }}
);
'''


def setup(wd):
    broker = Mosquitto(wd).start()
    slave = ModbusSlave(wd, {1: {"holding": [90]}, 2: {"holding": [55]}}).start()
    col = Collector(broker.port, f"{PREFIX}/#")
    gw = Gateway(wd, site_config(wd.path, broker.port, body(slave.port))).start()
    col.wait_json(f"{PREFIX}/telemetry/tank-1", lambda t, o: o["values"]["level"] == 90, 10,
                  "tank-1 telemetry")
    return broker, slave, col, gw


def raises(col, key, since=0):
    return [o for _, o, _, _ in col.json_since(since, f"{PREFIX}/events")
            if o and o["key"] == key and o["transition"] == "raise"]


def status(port):
    got = retained(port, f"{PREFIX}/status")
    return json.loads(got[f"{PREFIX}/status"]) if got.get(f"{PREFIX}/status") else None


def test_sigterm(wd):
    broker, slave, col, gw = setup(wd)
    assert status(broker.port)["online"] is True
    mark = col.mark()
    assert gw.stop() == 0, gw.output()
    assert status(broker.port)["online"] is False
    offline = [o for _, o, _, _ in col.json_since(mark, f"{PREFIX}/status")]
    assert offline and offline[-1]["online"] is False, offline
    assert "INFO main: stopped" in gw.output()
    assert "ERROR" not in gw.output() and "runtime error" not in gw.output()


def test_sighup_valid(wd):
    broker, slave, col, gw = setup(wd)
    col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == "tank-1/tank-high", 5,
                  "tank high raised")
    mark = col.mark()
    # Same file, changed: "tank low" now at 100 (90 < 100 raises), and a new sensor.
    with open(gw.config_path, "w") as f:
        f.write(site_config(wd.path, broker.port, body(slave.port, 100, extra_sensor=True)))
    gw.reload()
    gw.wait_output("config reloaded sensors=2 rules=2", 10)
    col.wait_json(f"{PREFIX}/telemetry/tank-2", lambda t, o: o["values"]["level"] == 55, 10,
                  "the added sensor publishes")
    ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == "tank-1/tank-low", 10,
                       "tank low raised by the new threshold", since=mark)
    assert ev["transition"] == "raise" and ev["value"] == 90, ev
    col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == "tank-2/tank-low", 10,
                  "tank-2 (55 < 100) raises too", since=mark)
    # tank-1 stays at 90 all along: the running "tank high" alarm carries over.
    n = len(telemetry_values(col, PREFIX, "tank-1"))
    wait_for(lambda: len(telemetry_values(col, PREFIX, "tank-1")) >= n + 3, 10, "3 more polls")
    again = raises(col, "tank-1/tank-high", mark)
    assert again == [], f"existing alarm raised again after reload: {again}"
    assert [o for _, o, _, _ in col.json_since(mark, f"{PREFIX}/events")
            if o["key"] == "tank-1/tank-high"] == [], "tank high changed on reload"
    got = retained(broker.port, f"{PREFIX}/alarms/#")
    assert json.loads(got[f"{PREFIX}/alarms/tank-1/tank-high"])["state"] == "unacked"
    assert f"{PREFIX}/alarms/tank-1/tank-low" in got
    assert gw.output().count("INFO gateway: started") == 1, "restarted instead of reloading"
    assert gw.alive()


def test_sighup_invalid(wd):
    broker, slave, col, gw = setup(wd)
    good = open(gw.config_path).read()
    # An unknown key on a known line: the error must name that line.
    with open(gw.config_path, "w") as f:
        f.write(good + "\nintervall_s = 5;\n")
    bad_line = len(good.splitlines()) + 2
    gw.reload()
    gw.wait_output("config reload failed", 10)
    out = gw.output()
    want = f"{gw.config_path}:{bad_line}:"
    assert want in out, f"no {want!r} in the log:\n{out[-2000:]}"
    assert "intervall_s" in out
    mark = col.mark()
    col.wait_json(f"{PREFIX}/telemetry/tank-1", lambda t, o: o["values"]["level"] == 90, 5,
                  "still publishing after the failed reload", since=mark)
    slave.set(1, "holding", 0, 42)
    col.wait_json(f"{PREFIX}/telemetry/tank-1", lambda t, o: o["values"]["level"] == 42, 5,
                  "still polling after the failed reload", since=mark)
    assert gw.alive() and "config reloaded" not in gw.output()
    assert gw.stop() == 0


def test_sighup_moves_hub(wd):
    """A reload that points the hub elsewhere: the old broker hears we left, the new one
    gets the whole retained state (status, health, active alarms) and the telemetry."""
    broker, slave, col, gw = setup(wd)
    col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == "tank-1/tank-high", 5,
                  "tank high raised")
    wd2 = type(wd)("second-broker")
    try:
        other = Mosquitto(wd2).start()
        col2 = Collector(other.port, f"{PREFIX}/#")
        with open(gw.config_path, "w") as f:
            f.write(site_config(wd.path, other.port, body(slave.port)))
        gw.reload()
        gw.wait_output("config reloaded", 10)
        col2.wait_json(f"{PREFIX}/telemetry/tank-1", lambda t, o: o["values"]["level"] == 90, 15,
                       "telemetry on the new hub")
        wait_for(lambda: (status(other.port) or {}).get("online") is True, 10,
                 "retained status online on the new hub")
        got = retained(other.port, f"{PREFIX}/#")
        assert f"{PREFIX}/health/tank-1" in got, sorted(got)
        assert json.loads(got[f"{PREFIX}/alarms/tank-1/tank-high"])["state"] == "unacked"
        wait_for(lambda: (status(broker.port) or {}).get("online") is False, 10,
                 "retained status offline on the old hub")
        mark = col.mark()
        col2.wait_json(f"{PREFIX}/telemetry/tank-1", lambda t, o: True, 5, "still publishing",
                       since=col2.mark())
        assert col.since(mark, f"{PREFIX}/telemetry/") == [], "still publishing to the old hub"
        assert gw.stop() == 0
        col2.close()
    finally:
        wd2.cleanup()


def check_config(path):
    p = subprocess.run([EXE, "--check-config", "-c", path], capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout + p.stderr


def test_check_config(wd):
    for name in ("config/campusgw.cfg", "config/demo.cfg"):
        rc, out = check_config(os.path.join(SOURCE_DIR, name))
        assert rc == 0, f"{name}: rc {rc}\n{out}"
        assert out.rstrip().endswith("config OK"), out
    text = open(os.path.join(SOURCE_DIR, "config/demo.cfg")).read()
    # Break it twice: a typo'd key and a wrong type, on known lines.
    lines = text.splitlines()
    i = next(n for n, l in enumerate(lines) if "interval_s = 2" in l)
    lines[i] = lines[i].replace("interval_s = 2", "intervall_s = 2")
    j = next(n for n, l in enumerate(lines) if "port = 1883" in l)
    lines[j] = lines[j].replace("port = 1883", 'port = "1883"')
    bad = wd.file("bad.cfg", "\n".join(lines) + "\n")
    rc, out = check_config(bad)
    log(out.strip())
    assert rc == 1, out
    assert re.search(rf"^{re.escape(bad)}:{i + 1}: .*intervall_s", out, re.M), out
    assert re.search(rf"^{re.escape(bad)}:{j + 1}: hub\.port: expected an integer", out, re.M), out
    assert "config OK" not in out
    rc, out = check_config(wd.file("missing.cfg"))
    assert rc == 1 and "cannot open" in out, out


def test_bad_config_at_start(wd):
    broker = Mosquitto(wd).start()
    slave = ModbusSlave(wd, {1: {"holding": [90]}}).start()
    col = Collector(broker.port, "#")
    text = site_config(wd.path, broker.port, body(slave.port)).replace(
        'above = 80;', 'above = 80; below = 5;')
    gw = Gateway(wd, text)
    super(Gateway, gw).start()
    rc = gw.proc.wait(timeout=15)
    out = gw.output()
    assert rc == 1, out
    assert re.search(rf"{re.escape(gw.config_path)}:\d+: rules\[0\]: above and below conflict", out), out
    assert "gateway did not start" in out
    # Nothing reached the broker: no message at all, nothing retained, no connection.
    assert col.all() == [], col.all()
    assert retained(broker.port, "#") == {}
    assert "campusgw-testdist" not in broker.output()
    assert len(slave.reads(1)) == 0


if __name__ == "__main__":
    run([test_sigterm, test_sighup_valid, test_sighup_invalid, test_sighup_moves_hub,
         test_check_config,
         test_bad_config_at_start])
