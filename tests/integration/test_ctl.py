#!/usr/bin/python3
"""campusgw-ctl against a real mosquitto: this test publishes the retained
state and plays the gateway's side of the commands itself (the end-to-end test
with the real gateway answering lives with the gateway's command handling).

Reads (status, sensors, alarms, --json), commands (ok, refused, someone else's
result ignored, timeout, connection refused), tail --count, usage errors,
--config from a gateway config file. The hazard commands, `hazards`, `report`
and `verify` (tampered copies of state.db caught) run against the real gateway.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402

CTL = os.path.join(h.BUILD_DIR, "campusgw-ctl")
P = h.PREFIX


def iso(ms):
    t = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ms % 1000:03d}Z"


def now_ms():
    return int(time.time() * 1000)


def check_clean(err, what):
    for mark in h.SANITIZER_MARKS:
        if mark in err:
            raise AssertionError(f"{what}: sanitizer report ({mark}):\n{err}")


def ctl(broker, *args, timeout=30, prefix=True):
    """Run campusgw-ctl; returns (exit code, stdout, stderr)."""
    argv = [CTL]
    if broker is not None:
        argv += ["--port", str(broker.port)]
    if prefix:
        argv += ["--prefix", P]
    argv += list(args)
    r = subprocess.run(argv, capture_output=True, timeout=timeout)
    out, err = r.stdout.decode(), r.stderr.decode()
    check_clean(err, " ".join(args))
    h.log(f"ctl {' '.join(args)} -> {r.returncode}")
    return r.returncode, out, err


def expect(rc, out, err, want_rc, what):
    if rc != want_rc:
        raise AssertionError(f"{what}: exit {rc}, want {want_rc}\nstdout:\n{out}\nstderr:\n{err}")


def publish_retained(pub, items):
    for topic, obj in items:
        pub.publish(topic, json.dumps(obj, ensure_ascii=False) if obj is not None else b"",
                    retain=True)


def health(sensor, online, last_seen_ms, seq, **extra):
    d = {"seq": seq, "sensor": sensor, "online": online,
         "last_seen": iso(last_seen_ms) if last_seen_ms else None, "errors": 0}
    d.update(extra)
    return d


def alarm(key, cls, state, raised_ms, seq, **extra):
    sensor, slug = key.split("/")
    d = {"seq": seq, "key": key, "sensor": sensor, "rule": slug.replace("-", " "), "class": cls,
         "state": state, "value": True, "raised_at": iso(raised_ms), "acked_at": None,
         "acked_by": None, "cleared_at": None, "level": 1}
    d.update(extra)
    return d


def data_lines(out):
    """Table rows: every line but the header and the summary line."""
    lines = out.rstrip("\n").split("\n")
    return lines[1:-1]


def test_sensors(wd):
    broker = h.Mosquitto(wd).start()
    pub = h.Collector(broker.port, topic=f"{P}/none")
    now = now_ms()
    publish_retained(pub, [
        (f"{P}/health/A-1F-hydrant-01", health("A-1F-hydrant-01", True, now - 2000, 1)),
        (f"{P}/health/A-3F-smoke-301", health("A-3F-smoke-301", False, now - 3 * 60000 - 5000, 2,
                                              battery=12.0, rssi=-97.0, snr=7.5, errors=4)),
        (f"{P}/health/B-2F-door-01", health("B-2F-door-01", True, now - 10000, 3,
                                            fault="tamper", battery=87.0)),
        (f"{P}/health/gone", health("gone", False, now, 4)),
        # another school on the same hub: not ours
        ("campus/testdist/other-school/health/X-1", health("X-1", False, now, 5)),
    ])
    pub.publish(f"{P}/health/gone", b"", retain=True)  # cleared retained message

    rc, out, err = ctl(broker, "sensors")
    expect(rc, out, err, 0, "sensors")
    h.log("\n" + out)
    rows = data_lines(out)
    assert len(rows) == 3, out
    assert rows[0].startswith("A-3F-smoke-301 ") and "OFFLINE" in rows[0], out
    assert "3 min ago" in rows[0] and "12%" in rows[0] and "-97 / 7.5" in rows[0], out
    assert rows[1].startswith("B-2F-door-01 ") and "tamper" in rows[1] and "87%" in rows[1], out
    assert rows[2].startswith("A-1F-hydrant-01 ") and "just now" in rows[2], out
    assert "X-1" not in out and "gone" not in out, out
    assert out.rstrip().endswith("3 sensors: 2 online, 1 offline, 1 with a fault"), out
    # Columns line up: STATE starts at the same place in every line.
    header = out.split("\n")[0]
    col = header.index("STATE")
    assert all(r[col - 2:col] == "  " and r[col] != " " for r in rows), out

    rc, out, err = ctl(broker, "sensors", "--json")
    expect(rc, out, err, 0, "sensors --json")
    arr = json.loads(out)
    assert [s["sensor"] for s in arr] == ["A-3F-smoke-301", "B-2F-door-01", "A-1F-hydrant-01"], arr
    assert arr[0]["battery"] == 12.0 and arr[0]["errors"] == 4, arr[0]

    # Many sensors: every retained message is read, none cut off by the end of the read.
    publish_retained(pub, [(f"{P}/health/S-{i:04d}", health(f"S-{i:04d}", True, now, 100 + i))
                           for i in range(600)])
    rc, out, err = ctl(broker, "sensors", "--json")
    expect(rc, out, err, 0, "sensors --json (603)")
    assert len(json.loads(out)) == 603, len(json.loads(out))
    pub.close()


def test_alarms_and_status(wd):
    broker = h.Mosquitto(wd).start()
    pub = h.Collector(broker.port, topic=f"{P}/none")

    # Nothing retained yet: no alarms, and status says the gateway never published.
    rc, out, err = ctl(broker, "alarms")
    expect(rc, out, err, 0, "alarms (none)")
    assert out == "no active alarms\n", out
    rc, out, err = ctl(broker, "status")
    expect(rc, out, err, 4, "status (nothing retained)")
    assert "no status published" in out, out

    now = now_ms()
    publish_retained(pub, [
        (f"{P}/alarms/A-1F-hydrant-01/hydrant-pressure-low",
         alarm("A-1F-hydrant-01/hydrant-pressure-low", "supervisory", "acked",
               now - 2 * 3600 * 1000, 10, value=0.05, acked_by="李工")),
        (f"{P}/alarms/A-3F-smoke-301/smoke-detected",
         alarm("A-3F-smoke-301/smoke-detected", "alarm", "unacked", now - 120000, 11, level=2)),
        (f"{P}/alarms/A-3F-smoke-302/smoke-detected",
         alarm("A-3F-smoke-302/smoke-detected", "alarm", "acked", now - 60000, 12)),
        (f"{P}/alarms/B-1F-door-01/sensor-offline",
         alarm("B-1F-door-01/sensor-offline", "trouble", "unacked", now - 1000, 13)),
        (f"{P}/alarms/C-1F-door-02/sensor-offline",
         alarm("C-1F-door-02/sensor-offline", "trouble", "unacked", now, 14)),
        (f"{P}/health/A-3F-smoke-301", health("A-3F-smoke-301", True, now, 20)),
        (f"{P}/health/B-1F-door-01", health("B-1F-door-01", False, now - 600000, 21)),
        (f"{P}/status", {"online": True, "version": "0.1.0",
                         "started_at": iso(now - 3 * 3600 * 1000 - 1000), "outbox": 7,
                         "dropped": 0, "sensors_online": 1, "sensors_offline": 1}),
    ])
    pub.publish(f"{P}/alarms/C-1F-door-02/sensor-offline", b"", retain=True)  # back to normal

    rc, out, err = ctl(broker, "alarms")
    expect(rc, out, err, 0, "alarms")
    h.log("\n" + out)
    rows = data_lines(out)
    keys = [r.split()[0] for r in rows]
    assert keys == ["A-3F-smoke-301/smoke-detected", "A-3F-smoke-302/smoke-detected",
                    "A-1F-hydrant-01/hydrant-pressure-low", "B-1F-door-01/sensor-offline"], out
    assert "2 min ago" in rows[0] and "unacked" in rows[0], out
    assert rows[2].rstrip().endswith("李工") and "2 h ago" in rows[2], out
    assert out.rstrip().endswith("4 alarms, 2 unacknowledged"), out

    rc, out, err = ctl(broker, "--json", "alarms")
    expect(rc, out, err, 0, "alarms --json")
    arr = json.loads(out)
    assert [a["key"] for a in arr] == keys, arr
    assert arr[2]["acked_by"] == "李工" and arr[2]["value"] == 0.05, arr[2]

    rc, out, err = ctl(broker, "status")
    expect(rc, out, err, 0, "status")
    h.log("\n" + out)
    lines = out.split("\n")
    assert lines[0].startswith("gateway   online, version 0.1.0, started ") and "(3 h ago)" in lines[0], out
    assert "outbox    7 records waiting, 0 telemetry dropped" in out, out
    assert "sensors   2: 1 online, 1 offline, 0 with a fault" in out, out
    assert "alarms    4 active (2 alarm, 1 supervisory, 1 trouble), 2 unacknowledged" in out, out

    rc, out, err = ctl(broker, "status", "--json")
    expect(rc, out, err, 0, "status --json")
    summary = json.loads(out)
    assert summary["status"]["outbox"] == 7, summary
    assert summary["alarms"] == {"total": 4, "unacked": 2,
                                 "by_class": {"alarm": 2, "supervisory": 1, "trouble": 1},
                                 "by_state": {"unacked": 2, "acked": 2}}, summary
    assert summary["sensors"] == {"total": 2, "online": 1, "offline": 1, "faulty": 0}, summary

    # The gateway's last will: offline, exit 4.
    pub.publish(f"{P}/status", json.dumps({"online": False}), retain=True)
    rc, out, err = ctl(broker, "status")
    expect(rc, out, err, 4, "status (offline)")
    assert "OFFLINE" in out.split("\n")[0], out

    # A retained message that is not JSON is skipped with a warning, the rest still shown.
    pub.publish(f"{P}/alarms/junk/x", b"\xff not json", retain=True)
    rc, out, err = ctl(broker, "alarms")
    expect(rc, out, err, 0, "alarms with junk")
    assert "ignored 1 retained message" in err and len(data_lines(out)) == 4, (out, err)
    pub.close()


class FakeGateway:
    """Answers P/cmd/* like the gateway: first someone else's result, then ours."""

    def __init__(self, port, answers):
        self.answers = answers  # key or sensor -> (ok, error, state)
        self.received = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(client_id=f"fake-gw-{os.getpid()}")
        self.client.on_connect = lambda c, u, f, rc: c.subscribe(f"{P}/cmd/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, q: self.ready.set()
        self.client.on_message = self.on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        h.wait_for(self.ready.is_set, 10, "fake gateway to subscribe")

    def on_message(self, client, userdata, msg):
        if msg.topic == f"{P}/cmd/result":
            return
        cmd = msg.topic.rsplit("/", 1)[1]
        req = json.loads(msg.payload)
        with self.lock:
            self.received.append((cmd, req))
        target = req.get("key") or req.get("sensor")
        ok, error, state = self.answers.get(target, (False, "unknown key", None))
        result = {"ok": ok, "cmd": cmd, "id": req.get("id")}
        result["sensor" if "sensor" in req else "key"] = target
        if error:
            result["error"] = error
        if state:
            result["state"] = state
        # Another operator's answer first: campusgw-ctl must wait for its own id.
        decoy = dict(result, id="not-yours", ok=not ok, error="decoy")
        client.publish(f"{P}/cmd/result", json.dumps(decoy), qos=1)
        client.publish(f"{P}/cmd/result", json.dumps(result, ensure_ascii=False), qos=1)

    def last(self):
        with self.lock:
            return self.received[-1]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def test_commands(wd):
    broker = h.Mosquitto(wd).start()
    gw = FakeGateway(broker.port, {
        "A-3F-smoke-301/smoke-detected": (True, None, "acked"),
        "A-1F-hydrant-01/hydrant-pressure-low": (True, None, "shelved"),
        "B-1F-door-01/exit-locked": (False, "wrong state", "normal"),
        "A-3F-smoke-301": (True, None, None),
    })

    rc, out, err = ctl(broker, "ack", "A-3F-smoke-301/smoke-detected", "--by", "王老师",
                       "--note", "误报，已检查")
    expect(rc, out, err, 0, "ack")
    assert out == "ok: ack A-3F-smoke-301/smoke-detected: now acked\n", out
    cmd, req = gw.last()
    assert cmd == "ack" and req["key"] == "A-3F-smoke-301/smoke-detected", req
    assert req["by"] == "王老师" and req["note"] == "误报，已检查", req
    assert len(req["id"]) == 32, req
    first_id = req["id"]

    rc, out, err = ctl(broker, "shelve", "A-1F-hydrant-01/hydrant-pressure-low", "90",
                       "--by", "li", "--json")
    expect(rc, out, err, 0, "shelve --json")
    result = json.loads(out)
    assert result["ok"] is True and result["state"] == "shelved", result
    cmd, req = gw.last()
    assert cmd == "shelve" and req["minutes"] == 90 and "note" not in req, req
    assert req["id"] != first_id and result["id"] == req["id"], (req, result)

    rc, out, err = ctl(broker, "out-of-service", "A-3F-smoke-301", "--by", "li",
                       "--note", "detector head replaced")
    expect(rc, out, err, 0, "out-of-service")
    assert out == "ok: out-of-service A-3F-smoke-301\n", out
    cmd, req = gw.last()
    assert cmd == "out_of_service" and req["sensor"] == "A-3F-smoke-301" and "key" not in req, req

    rc, out, err = ctl(broker, "in-service", "A-3F-smoke-301", "--by", "li")
    expect(rc, out, err, 0, "in-service")
    assert gw.last()[0] == "in_service", gw.last()

    # Refused by the gateway: exit 3, its reason on stderr.
    rc, out, err = ctl(broker, "ack", "B-1F-door-01/exit-locked", "--by", "li")
    expect(rc, out, err, 3, "ack refused")
    assert out == "", out
    assert ("the gateway refused ack B-1F-door-01/exit-locked: wrong state (state: normal)"
            in err), err
    rc, out, err = ctl(broker, "reset", "nope/nothing", "--by", "li")
    expect(rc, out, err, 3, "reset unknown key")
    assert "unknown key" in err and gw.last()[0] == "reset", err
    rc, out, err = ctl(broker, "unshelve", "nope/nothing", "--by", "li", "--json")
    expect(rc, out, err, 3, "unshelve --json refused")
    assert json.loads(out)["error"] == "unknown key", out

    # Usage errors never reach the hub.
    n = len(gw.received)
    rc, out, err = ctl(broker, "ack", "A-3F-smoke-301/smoke-detected")
    expect(rc, out, err, 64, "ack without --by")
    assert "ack needs --by NAME" in err, err
    rc, out, err = ctl(broker, "shelve", "A-3F-smoke-301/smoke-detected", "0", "--by", "x")
    expect(rc, out, err, 64, "shelve 0 minutes")
    rc, out, err = ctl(None, "alarms", prefix=False)
    expect(rc, out, err, 64, "no prefix")
    assert len(gw.received) == n, gw.received
    gw.close()


def test_timeout_and_refused(wd):
    broker = h.Mosquitto(wd).start()
    watcher = h.Collector(broker.port, topic=f"{P}/cmd/#")
    t0 = time.monotonic()
    rc, out, err = ctl(broker, "--timeout", "1.5", "ack", "A-3F-smoke-301/smoke-detected",
                       "--by", "li")
    took = time.monotonic() - t0
    expect(rc, out, err, 4, "ack with nobody answering")
    assert ("no answer from the gateway within 1.5 s: is campusgw running and connected to the "
            "hub?") in err, err
    assert 1.4 <= took < 6, took
    # The command did go out, QoS 1, with our id.
    sent = watcher.wait_json(f"{P}/cmd/ack", lambda t, o: True, 5, "the ack on the hub")
    assert sent["by"] == "li", sent
    watcher.close()

    rc, out, err = ctl(broker, "ack", "s/r", "--by", "li", "--timeout", "1")
    expect(rc, out, err, 4, "ack timeout 1 s")
    assert "within 1 s:" in err, err

    port = h.free_port()  # nothing listens there
    rc, out, err = subprocess_ctl(["--port", str(port), "--prefix", P, "alarms"])
    expect(rc, out, err, 2, "connection refused")
    assert f"cannot connect to the hub at tcp://127.0.0.1:{port}" in err, err
    rc, out, err = subprocess_ctl(["--port", str(port), "--prefix", P, "ack", "s/r", "--by", "x"])
    expect(rc, out, err, 2, "command, connection refused")


def subprocess_ctl(argv):
    r = subprocess.run([CTL] + argv, capture_output=True, timeout=30)
    err = r.stderr.decode()
    check_clean(err, " ".join(argv))
    return r.returncode, r.stdout.decode(), err


class Tail:
    def __init__(self, broker, *args):
        self.proc = subprocess.Popen([CTL, "--port", str(broker.port), "--prefix", P, "tail",
                                      *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.err = b""
        # Subscribed once it says so on stderr (events published before would be missed).
        self.first = self.proc.stderr.readline().decode()
        assert "following" in self.first, self.first

    def finish(self, timeout=15):
        out, err = self.proc.communicate(timeout=timeout)
        err = self.first + err.decode()
        check_clean(err, "tail")
        return self.proc.returncode, out.decode(), err


def test_tail(wd):
    broker = h.Mosquitto(wd).start()
    pub = h.Collector(broker.port, topic=f"{P}/none")
    now = now_ms()

    tail = Tail(broker, "--count", "2")
    raise_ev = alarm("A-3F-smoke-301/smoke-detected", "alarm", "unacked", now, 30,
                     transition="raise")
    pub.publish(f"{P}/notify/facilities", json.dumps({"seq": 31, "key": "x/y", "text": "t"}))
    pub.publish(f"{P}/events", json.dumps(raise_ev))
    ack_ev = dict(raise_ev, seq=32, state="acked", transition="ack", acked_at=iso(now + 5000),
                  acked_by="王老师", note="已处理")
    pub.publish(f"{P}/events", json.dumps(ack_ev, ensure_ascii=False))
    pub.publish(f"{P}/events", json.dumps(dict(raise_ev, seq=33, transition="clear")))
    rc, out, err = tail.finish()
    expect(rc, out, err, 0, "tail --count 2")
    h.log("\n" + out)
    lines = out.rstrip("\n").split("\n")
    assert len(lines) == 2, out  # the notification is not followed without --notify
    local = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now // 1000))
    assert lines[0].startswith(local + "  raise "), lines[0]
    assert "A-3F-smoke-301/smoke-detected  alarm  unacked  value=true  level=1" in lines[0], lines[0]
    assert " ack " in lines[1] and "by 王老师" in lines[1] and '"已处理"' in lines[1], lines[1]

    # --notify --json: one JSON object per line with its topic.
    tail = Tail(broker, "--notify", "--json", "--count", "2")
    pub.publish(f"{P}/notify/principal", json.dumps(
        {"seq": 40, "key": "A-3F-smoke-301/smoke-detected", "class": "alarm", "level": 1,
         "text": "【火警】A栋 3层 301室 烟感报警", "sensor": "A-3F-smoke-301", "location": {}},
        ensure_ascii=False))
    pub.publish(f"{P}/events", b"not json")  # skipped, not counted
    pub.publish(f"{P}/events", json.dumps(dict(raise_ev, seq=41)))
    rc, out, err = tail.finish()
    expect(rc, out, err, 0, "tail --notify --json")
    objs = [json.loads(line) for line in out.strip().split("\n")]
    assert objs[0]["topic"] == f"{P}/notify/principal" and objs[0]["text"].startswith("【火警】"), objs
    assert objs[1]["topic"] == f"{P}/events" and objs[1]["seq"] == 41, objs
    assert "not a JSON object" in err, err

    # Until Ctrl-C: SIGINT ends it cleanly with exit 0.
    tail = Tail(broker)
    pub.publish(f"{P}/events", json.dumps(dict(raise_ev, seq=50)))
    line = tail.proc.stdout.readline().decode()
    assert "raise" in line, line
    tail.proc.send_signal(signal.SIGINT)
    rc, out, err = tail.finish()
    expect(rc, out, err, 0, "tail after SIGINT")
    pub.close()

    # The hub restarts: tail says so, reconnects and goes on.
    tail = Tail(broker, "--count", "1")
    broker.restart()
    h.wait_for(lambda: h.port_open(broker.port), 10, "mosquitto back")
    lost = tail.proc.stderr.readline().decode()
    assert "lost the connection to the hub; reconnecting" in lost, lost
    back = tail.proc.stderr.readline().decode()
    assert "reconnected to the hub" in back, back
    pub = h.Collector(broker.port, topic=f"{P}/none")
    pub.publish(f"{P}/events", json.dumps(dict(raise_ev, seq=60, transition="clear",
                                               cleared_at=iso(now))))
    rc, out, err = tail.finish()
    expect(rc, out, err, 0, "tail across a hub restart")
    assert "  clear " in out, out
    pub.close()


def test_config_file(wd):
    broker = h.Mosquitto(wd).start()
    pub = h.Collector(broker.port, topic=f"{P}/none")
    state = os.path.join(wd.path, "state")
    os.makedirs(state)
    cfg = wd.file("campusgw.cfg", h.site_config(state, broker.port, ""))
    pub.publish(f"{P}/alarms/A-3F-smoke-301/smoke-detected",
                json.dumps(alarm("A-3F-smoke-301/smoke-detected", "alarm", "unacked",
                                 now_ms(), 1)), retain=True)
    # Host, port and prefix all come from the gateway's config.
    rc, out, err = subprocess_ctl(["-c", cfg, "alarms"])
    expect(rc, out, err, 0, "alarms with -c")
    assert "A-3F-smoke-301/smoke-detected" in out, out
    # An option still overrides the file: another prefix has no alarms.
    rc, out, err = subprocess_ctl(["-c", cfg, "--prefix", "campus/x/y", "alarms"])
    expect(rc, out, err, 0, "alarms with -c and --prefix")
    assert out == "no active alarms\n", out

    bad = wd.file("bad.cfg", "site = { district = \"d\"; };\nbogus = 1;\n")
    rc, out, err = subprocess_ctl(["-c", bad, "alarms"])
    expect(rc, out, err, 64, "invalid config")
    assert "cannot use the gateway config" in err and "bad.cfg:" in err, err
    pub.close()


def test_hub_login(wd):
    """A hub that wants a login: refused without, works with --username/--password-file."""
    pwfile = wd.file("passwd")
    subprocess.run(["mosquitto_passwd", "-b", "-c", pwfile, "ops", "s3cret"], check=True,
                   capture_output=True)
    broker = h.Mosquitto(wd, extra_conf=f"password_file {pwfile}\n")
    # The harness allows anonymous; a later line turns it off again for this listener.
    broker_conf = os.path.join(wd.path, "mosquitto.conf")
    with open(broker_conf) as f:
        text = f.read().replace("allow_anonymous true\n", "allow_anonymous false\n")
    with open(broker_conf, "w") as f:
        f.write(text)
    broker.start()
    rc, out, err = ctl(broker, "alarms")
    expect(rc, out, err, 2, "no login")
    assert "not authorized" in err or "bad username or password" in err, err
    secret = wd.file("ops.pw", "s3cret\n")
    os.chmod(secret, 0o600)
    rc, out, err = ctl(broker, "--username", "ops", "--password-file", secret, "alarms")
    expect(rc, out, err, 0, "with login")
    assert out == "no active alarms\n", out
    wrong = wd.file("wrong.pw", "nope\n")
    os.chmod(wrong, 0o600)
    rc, out, err = ctl(broker, "--username", "ops", "--password-file", wrong, "alarms")
    expect(rc, out, err, 2, "wrong password")


def make_certs(wd):
    """A CA and a server certificate for localhost / 127.0.0.1, made with openssl."""
    def run(*argv):
        subprocess.run(argv, cwd=wd.path, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-out", "ca.crt", "-days", "2", "-subj", "/CN=campusgw test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "hub.key", "-out",
        "hub.csr", "-subj", "/CN=localhost")
    wd.file("san.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "hub.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "hub.crt", "-days", "2", "-extfile", "san.ext")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key",
        "-out", "other.crt", "-days", "2", "-subj", "/CN=someone else")
    return {n: os.path.join(wd.path, n) for n in ("ca.crt", "hub.crt", "hub.key", "other.crt")}


def test_tls_hub(wd):
    """A hub on TLS, from the gateway's config (hub.tls.ca_file) and from --cafile."""
    certs = make_certs(wd)
    broker = h.Mosquitto(wd, extra_conf=f"cafile {certs['ca.crt']}\ncertfile {certs['hub.crt']}\n"
                                        f"keyfile {certs['hub.key']}\n").start()
    state = os.path.join(wd.path, "state")
    os.makedirs(state)
    cfg = wd.file("campusgw.cfg", h.site_config(state, broker.port, "").replace(
        'host = "127.0.0.1";', 'host = "localhost"; tls = { ca_file = "%s"; };' % certs["ca.crt"]))
    rc, out, err = subprocess_ctl(["-c", cfg, "status"])
    expect(rc, out, err, 4, "status over TLS from the config")  # connected; nothing published
    assert "no status published" in out, out
    rc, out, err = subprocess_ctl(["--host", "localhost", "--port", str(broker.port), "--cafile",
                                   certs["ca.crt"], "--prefix", P, "alarms"])
    expect(rc, out, err, 0, "alarms with --cafile")
    # A CA that did not sign the hub's certificate: refused, and said why it may be.
    rc, out, err = subprocess_ctl(["--host", "localhost", "--port", str(broker.port), "--cafile",
                                   certs["other.crt"], "--prefix", P, "alarms"])
    expect(rc, out, err, 2, "wrong CA")
    assert "TLS handshake failed" in err, err
    # Plain MQTT to a TLS listener does not get through either.
    rc, out, err = ctl(broker, "alarms", "--timeout", "2")
    expect(rc, out, err, 2, "no TLS to a TLS hub")


GW_BODY = '''
profiles = { door = { codec = "json"; values = ( { name = "state"; path = "state"; } ); }; };
sensors = ( { id = "door-1"; kind = "exit_door"; profile = "door"; expect_every_s = 3600;
              mqtt = { topic = "bridge/door-1"; }; } );
'''


def day_from_now(days):
    return time.strftime("%Y-%m-%d", time.localtime(time.time() + days * 86400))


def login_name():
    import pwd
    return os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name


def copy_db(state, wd, name):
    """A consistent copy of the gateway's state.db (its WAL folded in) to tamper with."""
    import sqlite3
    dst = os.path.join(wd.path, name)
    src = sqlite3.connect(f"file:{state}/state.db?mode=ro", uri=True)
    out = sqlite3.connect(dst)
    src.backup(out)
    src.close()
    out.close()
    return dst


def tamper(db, *sql):
    import sqlite3
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER IF EXISTS hazard_log_no_update")
    con.execute("DROP TRIGGER IF EXISTS hazard_log_no_delete")
    for s in sql:
        con.execute(s)
    con.commit()
    con.close()


def test_hazards_with_gateway(wd):
    """The hazard commands, `hazards`, `report` and `verify` against the real gateway."""
    broker = h.Mosquitto(wd).start()
    state = os.path.join(wd.path, "state")
    col = h.Collector(broker.port, f"{P}/hazards/#")
    gw = h.Gateway(wd, h.site_config(state, broker.port, GW_BODY)).start()
    cfg = gw.config_path
    h.wait_for(lambda: "INFO mqtt: hub connected" in gw.output(), 10, "the gateway on the hub")
    # a message published before the sources subscribe is lost: wait for them
    h.wait_for(lambda: "INFO mqtt_source: subscribed" in gw.output(), 10, "the MQTT sources")

    rc, out, err = ctl(broker, "hazards")
    expect(rc, out, err, 0, "hazards (none)")
    assert out == "no open hazards\n", out

    mark = col.mark()
    rc, out, err = ctl(broker, "hazard", "open", "--category", "fire_equipment", "--building",
                       "A栋", "--floor", "3", "--zone", "301", "--description", "灭火器压力不足",
                       "--responsible", "李工", "--deadline", day_from_now(3), "--by", "王老师")
    expect(rc, out, err, 0, "hazard open")
    assert out.startswith("ok: hazard open HZ-") and out.endswith(": now open\n"), out
    hid = out.split()[3].rstrip(":")
    rec = col.wait_json(f"{P}/hazards/{hid}", lambda t, o: True, 5, "the retained hazard",
                        since=mark)
    assert rec["found_by"] == "王老师" and rec["zone"] == "301", rec
    assert rec["deadline"].startswith(time.strftime("%Y-%m-%d", time.gmtime(
        time.mktime(time.strptime(day_from_now(3) + " 23:59:59", "%Y-%m-%d %H:%M:%S"))))), rec

    # Refused by the gateway (a deadline passed): exit 3 with its reason.
    rc, out, err = ctl(broker, "hazard", "open", "--category", "other", "--building", "B",
                       "--description", "d", "--responsible", "r", "--deadline",
                       day_from_now(-2), "--by", "w")
    expect(rc, out, err, 3, "hazard open with a deadline passed")
    assert "the gateway refused hazard open: deadline must be later than now" in err, err
    # Usage errors never reach the gateway.
    rc, out, err = ctl(broker, "hazard", "open", "--category", "fire", "--building", "B",
                       "--description", "d", "--responsible", "r")
    expect(rc, out, err, 64, "bad category")
    rc, out, err = ctl(broker, "hazard", "close", hid, "--note", "done")
    expect(rc, out, err, 64, "close without verifier")
    assert "--verifier" in err, err

    # Another one, auto-numbered; without --by it is the login name.
    rc, out, err = ctl(broker, "hazard", "open", "--category", "evacuation_route",
                       "--building", "B", "--description", "exit sign dark", "--responsible",
                       "赵工")
    expect(rc, out, err, 0, "hazard open (login name)")
    second = out.split()[3].rstrip(":")
    assert second != hid, (hid, second)
    entry = col.wait_json(f"{P}/hazards/log", lambda t, o: o["hazard"] == second, 5,
                          "the second open")
    assert entry["by"] == login_name(), entry

    rc, out, err = ctl(broker, "hazards")
    expect(rc, out, err, 0, "hazards")
    h.log("\n" + out)
    rows = data_lines(out)
    assert len(rows) == 2, out
    # Ordered by deadline: the evacuation route (1 day by default) before the 3-day one.
    assert rows[0].startswith(second + "  open ") and "B " in rows[0], out
    assert rows[1].startswith(hid + "  open ") and "A栋 / 3 / 301" in rows[1], out
    assert "李工" in rows[1] and "灭火器压力不足" in rows[1] and "(in " in rows[1], out
    assert out.rstrip().endswith("2 hazards not closed: 2 open, 0 rectifying; 0 overdue"), out
    rc, out, err = ctl(broker, "hazards", "--json")
    expect(rc, out, err, 0, "hazards --json")
    assert [x["id"] for x in json.loads(out)] == [second, hid], out

    for args, state_after in [(("rectifying", hid, "--note", "ordered"), "rectifying"),
                              (("close", hid, "--note", "换新", "--verifier", "zhao"), "closed"),
                              (("reopen", hid, "--deadline", day_from_now(5)), "open"),
                              (("update", hid, "--responsible", "钱工"), "open")]:
        rc, out, err = ctl(broker, "hazard", *args, "--by", "li")
        expect(rc, out, err, 0, f"hazard {args[0]}")
        assert out == f"ok: hazard {args[0]} {hid}: now {state_after}\n", out
    rc, out, err = ctl(broker, "hazard", "rectifying", hid, "--by", "li")
    rc, out, err = ctl(broker, "hazard", "rectifying", hid, "--by", "li")
    expect(rc, out, err, 3, "rectifying twice")
    assert f"the gateway refused hazard rectifying {hid}:" in err, err
    rc, out, err = ctl(broker, "hazard", "update", "HZ-20990101-001", "--responsible", "x",
                       "--by", "li", "--json")
    expect(rc, out, err, 3, "update an unknown hazard")
    assert json.loads(out)["ok"] is False, out
    rc, out, err = ctl(broker, "hazard", "close", second, "--note", "bulb replaced",
                       "--verifier", "zhao", "--by", "li")
    expect(rc, out, err, 0, "close the second")
    rc, out, err = ctl(broker, "hazards", "--all")
    expect(rc, out, err, 0, "hazards --all")
    assert out.rstrip().endswith("2 hazards: 0 open, 1 rectifying, 1 closed; 0 overdue"), out

    # The daily log, as the gateway builds it.
    rc, out, err = ctl(broker, "report", "--day", day_from_now(0))
    expect(rc, out, err, 0, "report today")
    assert "Test School" in out, out[:500]
    rc, out, err = ctl(broker, "report", "--day", day_from_now(0), "--csv")
    expect(rc, out, err, 0, "report --csv")
    assert out.startswith("\ufeff"), repr(out[:20])
    rc, out, err = ctl(broker, "report")  # yesterday
    expect(rc, out, err, 0, "report (yesterday)")
    rc, out, err = ctl(broker, "report", "--day", day_from_now(3))
    expect(rc, out, err, 3, "report of a day to come")
    assert "future" in err, err

    # verify, while the gateway runs: the chain's head is the last entry the gateway published.
    last = col.wait_json(f"{P}/hazards/log", lambda t, o: o["hazard"] == second and
                         o["action"] == "close", 5, "the last entry")
    n = last["seq"]
    for args in (["--state-dir", state], ["-c", cfg], ["--db", os.path.join(state, "state.db")]):
        rc, out, err = ctl(None, "verify", *args, prefix=False)
        expect(rc, out, err, 0, "verify " + " ".join(args))
        assert out == f"hazard register: {n} entries, chain intact, head {last['hash']}\n", out
    assert gw.stop() == 0

    # Tampered copies: each is caught and the entry named; exit 1.
    n2, hz2 = h.state_db_rows(state, "SELECT n, hazard FROM hazard_log WHERE entry LIKE "
                              "'%\"action\":\"rectifying\"%' ORDER BY n LIMIT 1")[0]
    assert n2 > 1, n2
    db = copy_db(state, wd, "edited.db")
    tamper(db, f"UPDATE hazard_log SET entry = replace(entry, '\"by\":\"li\"', '\"by\":\"xx\"')"
               f" WHERE n = {n2}")
    rc, out, err = ctl(None, "verify", "--db", db, prefix=False)
    expect(rc, out, err, 1, "verify an edited entry")
    assert f"the hazard register was altered: entry n={n2} ({hz2}, rectifying by xx" in err, err
    assert "hash mismatch" in err, err
    db = copy_db(state, wd, "moved.db")
    tamper(db, f"UPDATE hazard_log SET at = at + 1 WHERE n = {n2}")
    rc, out, err = ctl(None, "verify", "--db", db, prefix=False)
    expect(rc, out, err, 1, "verify a row whose at column was changed")
    assert f"entry n={n2} ({hz2}): the row's at column" in err, err
    db = copy_db(state, wd, "deleted.db")
    tamper(db, f"DELETE FROM hazard_log WHERE n = {n2}")
    rc, out, err = ctl(None, "verify", "--db", db, prefix=False)
    expect(rc, out, err, 1, "verify with a row deleted")
    assert f"entry n={n2 + 1} (" in err and "expected seq" in err, err
    rc, out, err = ctl(None, "verify", "--db", os.path.join(wd.path, "nope.db"), prefix=False)
    expect(rc, out, err, 1, "verify a file that is not there")
    assert "cannot open" in err, err
    other = os.path.join(wd.path, "other.db")
    import sqlite3
    sqlite3.connect(other).execute("CREATE TABLE t(x)").connection.close()
    rc, out, err = ctl(None, "verify", "--db", other, prefix=False)
    expect(rc, out, err, 1, "verify another database")
    assert "has no hazard register" in err, err
    # The original, untouched, is still intact.
    rc, out, err = ctl(None, "verify", "--state-dir", state, prefix=False)
    expect(rc, out, err, 0, "verify the original after the tests")
    col.close()


if __name__ == "__main__":
    h.run([test_sensors, test_alarms_and_status, test_commands, test_timeout_and_refused,
           test_tail, test_config_file, test_hub_login, test_tls_hub, test_hazards_with_gateway])
