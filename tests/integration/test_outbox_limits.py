#!/usr/bin/python3
"""The outbox at its limits: full (store.max_mb) with the hub unreachable, and a
full file system under state_dir (commits fail, alarms still go out from memory,
the store recovers when space returns)."""

import errno
import http.client
import os
import subprocess
import time

from harness import (PREFIX, Collector, Gateway, ModbusSlave, Mosquitto, Sim, free_port, log, run,
                     sim_hydrants, site_config, state_db_rows, wait_for)

# P/status goes out at start, every 60 s and on a reload (SIGHUP). A test that wants
# the current figures without waiting a minute sends SIGHUP with the config unchanged.


def status_now(gw, col, timeout=10):
    """Reload (config unchanged) and return the P/status published with it."""
    mark = col.mark()
    at = len(gw.output())
    gw.reload()
    gw.wait_output("config reloaded", timeout, start=at)
    return col.wait_json(f"{PREFIX}/status", lambda t, o: o.get("online") is True, timeout,
                         "P/status after the reload", since=mark)


def seqs_of(col):
    """Every seq seen, plus the seq of each cleared alarm's empty retained record (the
    one after its clear event), which has no payload to carry it."""
    seen = set()
    for topic, obj, _, _ in col.json(f"{PREFIX}/"):
        if isinstance(obj, dict) and "seq" in obj:
            seen.add(obj["seq"])
            if topic == f"{PREFIX}/events" and obj.get("transition") == "clear":
                seen.add(obj["seq"] + 1)
    return seen


# ---- a. outbox full ----

NBIG = 80
LONG = "x" * 30


def big_school(wd):
    """NBIG sensors of 16 long-named points each: about 1 KB per telemetry record."""
    regs = [1000 + 37 * k for k in range(16)]
    devices = ",\n".join(f'  {{ name = "d{i}"; unit_id = {i}; type = "registers"; size = 16; '
                         f'holding = [ {", ".join(map(str, regs))} ]; }}'
                         for i in range(1, NBIG + 1))
    sim = Sim(wd, f"devices = (\n{devices}\n);\n").start()
    points = ", ".join(f'{{ name = "point_{k:02d}_{LONG}"; address = {k}; scale = 0.001; }}'
                       for k in range(16))
    sensors = ",\n".join(
        f'  {{ id = "big-sensor-{i:03d}-{LONG}"; kind = "wide_kind_{LONG}"; profile = "wide"; '
        f'modbus = "sim"; unit_id = {i}; interval_s = 1; }}' for i in range(1, NBIG + 1))
    return sim, (f'{{ name = "sim"; tcp = "127.0.0.1:{sim.port}"; timeout_ms = 500; }}',
                 f"wide = {{ points = ( {points} ); }};", sensors)


def transitions_logged(gw):
    return [line for line in gw.output().splitlines()
            if line.startswith(("WARN alarm: raised key=tank-1/", "INFO alarm: cleared key=tank-1/"))]


def test_outbox_full(wd):
    # The hub: a persistent session for our subscriber is made now, then the broker
    # stops, so the gateway starts with nothing listening on its hub port; when the
    # broker comes back, whatever the gateway sends is kept for us even if the gateway
    # reconnects before we do (QoS 0 telemetry too).
    hub = Mosquitto(wd, persistence=True, extra_conf="queue_qos0_messages true\n").start()
    col = Collector(hub.port, f"{PREFIX}/#", client_id="hub-subscriber", clean_session=False)
    col.close()
    assert hub.stop() == 0
    sim, (bus, profile, sensors) = big_school(wd)
    slave = ModbusSlave(wd, {1: {"holding": [40]}}).start()
    body = f'''
store = {{ commit_ms = 100; max_mb = 1; }};
modbus = ( {bus}, {{ name = "bus2"; tcp = "127.0.0.1:{slave.port}"; timeout_ms = 500; }} );
profiles = {{ {profile} tank = {{ points = ( {{ name = "level"; address = 0; }} ); }}; }};
sensors = (
{sensors},
  {{ id = "tank-1"; kind = "tank"; profile = "tank"; modbus = "bus2"; unit_id = 1; interval_s = 1; }} );
rules = ( {{ name = "tank high"; kind = "tank"; point = "level"; above = 80; class = "alarm"; }} );
'''
    state = os.path.join(wd.path, "state")
    gw = Gateway(wd, site_config(state, hub.port, body))
    t0 = time.monotonic()
    gw.start()
    gw.wait_output("hub broker unreachable", 10)

    def toggle(level, n):
        slave.set(1, "holding", 0, level)
        wait_for(lambda: len(transitions_logged(gw)) >= n, 10, f"alarm transition {n}")

    toggle(95, 1)  # raised early: the oldest records in the outbox are around it
    gw.wait_output("WARN store: outbox full: dropped oldest telemetry", 60)
    log(f"outbox full after {time.monotonic() - t0:.1f} s")
    toggle(40, 2)
    toggle(95, 3)
    # keep filling: a few more seconds of drops
    reads = len(slave.reads(1))
    wait_for(lambda: len(slave.reads(1)) >= reads + 4, 15, "4 more polls")
    toggle(40, 4)
    toggle(95, 5)
    assert gw.alive()
    fill_s = time.monotonic() - t0
    size_mb = sum(os.path.getsize(os.path.join(state, f)) for f in os.listdir(state)
                  if f.startswith("state.db")) / 1e6
    log(f"filled for {fill_s:.1f} s; state.db and its WAL take {size_mb:.2f} MB "
        f"({', '.join(sorted(os.listdir(state)))})")

    hub.start()
    col = Collector(hub.port, f"{PREFIX}/#", client_id="hub-subscriber", clean_session=False)
    gw.wait_output("hub broker reachable again", 40)
    transitions = transitions_logged(gw)

    def events():
        return [o for _, o, _, _ in col.json(f"{PREFIX}/events") if o]
    wait_for(lambda: len({o["seq"] for o in events()}) >= len(transitions), 20,
             f"all {len(transitions)} alarm events on the hub")
    wait_for(lambda: state_db_rows(state, "SELECT COUNT(*) FROM outbox")[0][0] < 200, 30,
             "the outbox to drain")
    evs, seen = [], set()
    for o in events():
        if o["seq"] not in seen:
            seen.add(o["seq"])
            evs.append(o)
    assert [o["transition"] for o in evs] == ["raise", "clear", "raise", "clear", "raise"], \
        [(o["seq"], o["transition"]) for o in evs]
    assert len(transitions) == 5, transitions
    st = status_now(gw, col)
    for key in ("online", "version", "started_at", "outbox", "dropped", "sensors_online",
                "sensors_offline"):
        assert key in st, f"P/status has no {key}: {st}"
    assert st["dropped"] > 0 and "store_error" not in st, st
    # The dropped records are exactly the oldest data records: every seq missing on the
    # hub is older than every data record that arrived, and there are `dropped` of them.
    got = seqs_of(col)
    top = max(got)
    missing = sorted(set(range(1, top + 1)) - got)
    data_seqs = sorted(o["seq"] for t, o, _, _ in col.json(f"{PREFIX}/")
                       if isinstance(o, dict) and "seq" in o
                       and t[len(PREFIX) + 1:].startswith(("telemetry/", "health/", "metrics")))
    log(f"dropped={st['dropped']}; hub got {len(got)} seqs up to {top}, missing {len(missing)} "
        f"({missing[:3]}..{missing[-3:]}); oldest data seq that arrived: {data_seqs[0]}")
    # The first data record is dropped first: whatever arrived older than it is an
    # alarm-stream record (the start-up P/log, ...), which is never dropped.
    assert missing, "nothing was dropped"
    topic_of = {o["seq"]: t[len(PREFIX) + 1:] for t, o, _, _ in col.json(f"{PREFIX}/")
                if isinstance(o, dict) and "seq" in o}
    older = {s: topic_of.get(s) for s in got if s < missing[0]}
    assert all(t and t.startswith(("log", "events", "alarms/", "hazards/", "cmd/", "notify/"))
               for t in older.values()), f"older than the first dropped seq arrived: {older}"
    assert max(missing) < min(data_seqs), \
        f"a dropped record ({max(missing)}) is newer than a delivered one ({min(data_seqs)})"
    assert len(missing) == st["dropped"], f"{len(missing)} seqs missing, dropped={st['dropped']}"
    # The alarm stays raised on the hub (retained, restored on reconnect).
    alarm = [o for t, o, _, _ in col.json(f"{PREFIX}/alarms/tank-1/tank-high") if o]
    assert alarm and alarm[-1]["state"] == "unacked", alarm[-1:]
    # Logged at most about once a minute.
    n_full = gw.output().count("outbox full:")
    elapsed = time.monotonic() - t0
    assert n_full <= 1 + int(elapsed / 60), f"'outbox full' logged {n_full} times in {elapsed:.0f} s"
    col.close()


# ---- b. full file system under state_dir ----

def mount_small_fs(path, size_mb=2):
    """A size_mb file system at path: tmpfs if we may mount, else a loop-mounted ext4.
    Returns a cleanup function, or None when neither can be mounted here (not root)."""
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0750", "tmpfs", path],
                       capture_output=True, text=True)
    if r.returncode == 0:
        return lambda: subprocess.run(["umount", "-l", path], check=False)
    image = path + ".img"
    with open(image, "wb") as f:
        f.truncate(size_mb * 1024 * 1024)
    if (subprocess.run(["mkfs.ext4", "-q", "-F", image], capture_output=True).returncode == 0
            and subprocess.run(["mount", "-o", "loop", image, path],
                               capture_output=True).returncode == 0):
        return lambda: subprocess.run(["umount", "-l", path], check=False)
    log(f"cannot mount a small file system here: {r.stderr.strip()}")
    return None


def fill(path):
    """Write path until the file system is full; the bytes written."""
    n = 0
    chunk = b"\0" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            try:
                n += os.write(fd, chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[:len(chunk) // 2]
    finally:
        os.close(fd)
    return n


def healthz(port):
    """GET /healthz: (status, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/healthz")
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, body


def test_disk_full(wd):
    # A real ENOSPC: state_dir on a 2 MB tmpfs (or loop ext4), filled by a file. A
    # read-only directory is no substitute: SQLite keeps its open WAL writable.
    state = os.path.join(wd.path, "state")
    unmount = mount_small_fs(state)
    if unmount is None:
        assert os.geteuid() != 0, "root and still no way to mount a small file system"
        log("SKIP test_disk_full: mounting needs root")
        return
    gw = None
    try:
        broker = Mosquitto(wd).start()
        sim, bus, profile, sensors, ids = sim_hydrants(wd, 5)
        slave = ModbusSlave(wd, {1: {"holding": [40]}}).start()
        http_port = free_port()
        body = f'''
store = {{ commit_ms = 100; }};
http = {{ listen = "127.0.0.1:{http_port}"; }};
modbus = ( {bus}, {{ name = "bus2"; tcp = "127.0.0.1:{slave.port}"; timeout_ms = 500; }} );
profiles = {{ {profile} tank = {{ points = ( {{ name = "level"; address = 0; }} ); }}; }};
sensors = (
{sensors},
  {{ id = "tank-1"; kind = "tank"; profile = "tank"; modbus = "bus2"; unit_id = 1; interval_s = 1; }} );
rules = ( {{ name = "tank high"; kind = "tank"; point = "level"; above = 80; class = "alarm"; }} );
'''
        gw = Gateway(wd, site_config(state, broker.port, body))
        col = Collector(broker.port, f"{PREFIX}/#")
        gw.start()
        col.wait_json(f"{PREFIX}/telemetry/tank-1", lambda t, o: True, 10, "telemetry")
        filler = os.path.join(state, "filler")
        at = len(gw.output())
        nbytes = fill(filler)
        log(f"filled {state} with {nbytes / 1e6:.2f} MB")
        gw.wait_output("ERROR store: commit failed", 20, start=at)
        st = status_now(gw, col)
        assert st.get("store_error"), f"P/status has no store_error while commits fail: {st}"
        log(f"P/status store_error: {st['store_error']!r}")
        code, text = healthz(http_port)
        assert code == 503 and "store cannot write" in text, (code, text)
        # An alarm now cannot be written to disk; it must still reach the hub.
        mark = col.mark()
        slave.set(1, "holding", 0, 95)
        gw.wait_output("WARN alarm: raised key=tank-1/tank-high", 10, start=at)
        ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == "tank-1/tank-high", 10,
                           "the alarm event on the hub while the disk is full", since=mark)
        assert ev["transition"] == "raise", ev
        col.wait_json(f"{PREFIX}/alarms/tank-1/tank-high", lambda t, o: o["state"] == "unacked",
                      10, "the retained alarm on the hub", since=mark)
        n = len(col.all(f"{PREFIX}/telemetry/"))
        wait_for(lambda: len(col.all(f"{PREFIX}/telemetry/")) >= n + 30, 15,
                 "telemetry keeps flowing from memory")
        assert gw.alive(), "the gateway died on a full disk"
        assert "commits work again" not in gw.output()[at:]

        os.unlink(filler)
        gw.wait_output("INFO store: commits work again", 20, start=at)
        st = status_now(gw, col)
        assert "store_error" not in st, f"store_error still on P/status after recovery: {st}"
        assert healthz(http_port) == (200, "ok\n")
        # What waited in memory is on disk now: the alarm state, with the seq the hub saw.
        retained_alarm = [o for t, o, _, _ in col.json(f"{PREFIX}/alarms/tank-1/tank-high") if o][-1]
        rows = state_db_rows(state, "SELECT seq FROM alarm_state WHERE key = ?",
                             ("tank-1/tank-high",))
        assert rows == [(retained_alarm["seq"],)], (rows, retained_alarm)
        # Nothing was lost on the way: every seq reached the hub, before, during and after.
        got = seqs_of(col)
        gaps = sorted(set(range(min(got), max(got) + 1)) - got)
        assert not gaps, f"seqs missing on the hub: {gaps[:20]} ({len(gaps)})"
        # and the outbox is trimmed again once the hub has it all
        wait_for(lambda: state_db_rows(state, "SELECT COUNT(*) FROM outbox")[0][0] < 50, 10,
                 "the outbox to be trimmed after recovery")
        log(f"{len(got)} seqs on the hub, gap-free")
        rc = gw.stop()
        assert rc == 0, f"campusgw exited {rc}"
        col.close()
    finally:
        if gw is not None:
            gw.kill()
        for p in wd.procs:
            p.kill()
        unmount()


if __name__ == "__main__":
    run([test_outbox_full, test_disk_full])
