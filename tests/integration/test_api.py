#!/usr/bin/python3
"""The JSON API and the operations endpoints against a running gateway: every endpoint, logins,
roles, CSRF, bearer tokens, wrong state, bad input; actions go through the same path as MQTT
commands (the alarm's retained record and P/events change), /metrics passes promtool. The
hazard register's routes (the same rules; 503 when the register was tampered with) and the
daily log downloads."""

import http.client
import json
import shutil
import subprocess
import time

from harness import (BUILD_DIR, PREFIX, Collector, Gateway, Mosquitto, free_port, log, retained,
                     run, site_config, wait_for)


def hash_secret(secret):
    out = subprocess.run([f"{BUILD_DIR}/campusgw", "--hash-password"], input=secret.encode(),
                         capture_output=True, check=True, timeout=60)
    return out.stdout.decode().strip()


class Client:
    def __init__(self, port):
        self.port = port
        self.cookie = None
        self.csrf = None
        self.token = None

    def call(self, method, path, body=None, csrf=True, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = dict(headers or {})
        if self.cookie:
            h["Cookie"] = self.cookie
        if self.csrf and csrf:
            h["X-CSRF-Token"] = self.csrf
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        if data is not None:
            h["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        c.close()
        ctype = r.getheader("Content-Type") or ""
        return r.status, (json.loads(raw) if "json" in ctype and raw else raw.decode()), r

    def login(self, name, password):
        status, body, r = self.call("POST", "/api/login", {"name": name, "password": password})
        if status == 200:
            self.cookie = r.getheader("Set-Cookie").split(";")[0]
            self.csrf = body["csrf"]
        return status, body, r


def setup(wd):
    broker = Mosquitto(wd).start()
    port = free_port()
    users = f'''users = (
      {{ name = "wang"; role = "operator"; password_hash = "{hash_secret('op-secret-1')}";
         token_hash = "{hash_secret('script-token-0123456789')}"; }},
      {{ name = "zhao"; role = "viewer"; password_hash = "{hash_secret('viewer-secret-1')}"; }} );'''
    body = f'''
http = {{ listen = "127.0.0.1:{port}"; {users} }};
profiles = {{ door = {{ codec = "json"; values = ( {{ name = "state"; path = "state"; }} ); }}; }};
sensors = ( {{ id = "door-1"; kind = "exit_door"; profile = "door"; expect_every_s = 3600;
               mqtt = {{ topic = "bridge/door-1"; }};
               location = {{ building = "A"; floor = "1"; zone = "east exit"; }}; }} );
rules = ( {{ name = "exit locked"; kind = "exit_door"; point = "state"; equals = "locked";
             class = "supervisory"; }} );
'''
    col = Collector(broker.port, f"{PREFIX}/#")
    gw = Gateway(wd, site_config(f"{wd.path}/state", broker.port, body)).start()
    wait_for(lambda: "INFO http: listening" in gw.output(), 10, "the http server")
    # a message published before the sources subscribe is lost: wait for them
    wait_for(lambda: "INFO mqtt_source: subscribed" in gw.output(), 10, "the MQTT sources")
    return broker, col, gw, port


def raise_locked(broker, col):
    mark = col.mark()
    col.publish("bridge/door-1", json.dumps({"state": "locked"}))
    col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == "door-1/exit-locked", 10,
                  "the locked raise", since=mark)


def test_api(wd):
    broker, col, gw, port = setup(wd)
    anon = Client(port)
    # Operations endpoints.
    status, body, _ = anon.call("GET", "/healthz")
    assert status == 200 and body.strip() == "ok", (status, body)
    # Users exist: nothing without logging in (the loopback read-only mode is for no users).
    for path in ("/api/sensors", "/api/alarms", "/api/events", "/metrics", "/api/me"):
        status, body, _ = anon.call("GET", path)
        assert status == 401, (path, status, body)

    viewer, op = Client(port), Client(port)
    assert viewer.login("zhao", "wrong")[0] == 401
    assert viewer.login("nobody", "x")[0] == 401
    status, body, r = viewer.login("zhao", "viewer-secret-1")
    assert status == 200 and body["role"] == "viewer", body
    cookie = r.getheader("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie, cookie
    assert op.login("wang", "op-secret-1")[1]["role"] == "operator"

    raise_locked(broker, col)
    status, sensors, _ = viewer.call("GET", "/api/sensors")
    assert status == 200 and sensors[0]["id"] == "door-1", sensors
    assert sensors[0]["values"] == {"state": "locked"} and sensors[0]["alarms"] == 1, sensors
    assert sensors[0]["location"]["zone"] == "east exit", sensors
    status, one, _ = viewer.call("GET", "/api/sensors/door-1")
    assert status == 200 and one["alarms"][0]["key"] == "door-1/exit-locked", one
    assert viewer.call("GET", "/api/sensors/nope")[0] == 404
    status, alarms, _ = viewer.call("GET", "/api/alarms")
    assert [a["key"] for a in alarms] == ["door-1/exit-locked"], alarms
    status, events, _ = viewer.call("GET", "/api/events")
    assert status == 200 and events[-1]["transition"] == "raise", events
    assert viewer.call("GET", "/api/events?since=yesterday")[0] == 400

    key = "door-1/exit-locked"
    # A viewer looks, never acts; an operator acts only with the CSRF token of its session.
    assert viewer.call("POST", f"/api/alarms/{key}/ack", {"note": "x"})[0] == 403
    status, body, _ = op.call("POST", f"/api/alarms/{key}/ack", {"note": "checked"}, csrf=False)
    assert status == 403 and "CSRF" in body["error"], body
    bad = Client(port)
    bad.cookie, bad.csrf = op.cookie, "0" * 64
    assert bad.call("POST", f"/api/alarms/{key}/ack", {})[0] == 403
    # Bad input and unknown things: 400 / 404; nothing changes.
    assert op.call("POST", f"/api/alarms/{key}/ack", b"{not json")[0] == 400
    assert op.call("POST", f"/api/alarms/{key}/ack", {"sudo": True})[0] == 400
    assert op.call("POST", f"/api/alarms/{key}/shelve", {"minutes": 0})[0] == 400
    assert op.call("POST", "/api/alarms/nope/nothing/ack", {})[0] == 404
    assert op.call("POST", f"/api/alarms/{key}/explode", {})[0] == 404
    a = json.loads(retained(broker.port, f"{PREFIX}/alarms/{key}")[f"{PREFIX}/alarms/{key}"])
    assert a["state"] == "unacked", a
    # The ack: recorded with the user's name (not what the body says), published as by MQTT.
    mark = col.mark()
    status, body, _ = op.call("POST", f"/api/alarms/{key}/ack", {"note": "门已打开", "by": "x"})
    assert status == 200 and body["state"] == "acked", body
    ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == key and o["transition"] ==
                       "ack", 5, "the ack event", since=mark)
    assert ev["by"] == "wang" and ev["note"] == "门已打开", ev
    # Wrong state: 409.
    status, body, _ = op.call("POST", f"/api/alarms/{key}/ack", {})
    assert status == 409 and "wrong state" in body["error"], body
    assert op.call("POST", f"/api/alarms/{key}/reset", {})[0] == 409
    # Sensors out of service and back.
    status, body, _ = op.call("POST", "/api/sensors/door-1/out-of-service", {"note": "new lock"})
    assert status == 200 and body["state"] == "out_of_service", body
    assert op.call("GET", "/api/sensors/door-1")[1]["out_of_service"] is True
    assert op.call("POST", "/api/sensors/door-1/out-of-service", {})[0] == 409
    assert op.call("POST", "/api/sensors/door-1/in-service", {})[1]["state"] == "in_service"
    assert op.call("POST", "/api/sensors/nope/in-service", {})[0] == 404

    # Scripts: a bearer token, no CSRF needed; a wrong one is 401.
    script = Client(port)
    script.token = "script-token-0123456789"
    status, body, _ = script.call("GET", "/api/me")
    assert status == 200 and body["name"] == "wang", body
    t0 = time.monotonic()
    assert script.call("GET", "/api/alarms")[0] == 200
    log(f"a cached bearer token answers in {1000 * (time.monotonic() - t0):.0f} ms")
    script.token = "wrong-token-0123456789"
    assert script.call("GET", "/api/alarms")[0] == 401

    # Logout ends the session.
    assert op.call("POST", "/api/logout")[0] == 200
    assert op.call("GET", "/api/alarms")[0] == 401

    # /metrics: Prometheus text that promtool accepts.
    status, text, _ = viewer.call("GET", "/metrics")
    assert status == 200 and "campusgw_alarms{" in text, text[:300]
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
        assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()


def test_live_stream(wd):
    """The page's event stream: an alarm raised shows up live, the stream needs a login."""
    broker, col, gw, port = setup(wd)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/api/stream")
    r = c.getresponse()
    assert r.status == 401, r.status
    r.read()
    c.close()
    viewer = Client(port)
    viewer.login("zhao", "viewer-secret-1")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/api/stream", headers={"Cookie": viewer.cookie})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/event-stream")
    raise_locked(broker, col)
    events, event = [], None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(e == "alarm" for e, _ in events):
        line = r.fp.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event:
            events.append((event, json.loads(line[6:])))
    c.close()
    kinds = [e for e, _ in events]
    log(f"stream events: {kinds}")
    assert "event" in kinds and "alarm" in kinds, kinds
    alarm = next(d for e, d in events if e == "alarm")
    assert alarm["key"] == "door-1/exit-locked" and alarm["state"] == "unacked", alarm


def test_failed_logins_are_rate_limited(wd):
    broker, col, gw, port = setup(wd)
    c = Client(port)
    codes = [c.login("wang", f"wrong-{i}")[0] for i in range(7)]
    log(f"failed logins: {codes}")
    assert codes[:5] == [401] * 5 and 429 in codes[5:], codes
    status, _, r = c.login("wang", "op-secret-1")  # even the right password waits now
    assert status == 429 and int(r.getheader("Retry-After")) > 0, status


def iso_day(offset_days):
    return time.strftime("%Y-%m-%d", time.localtime(time.time() + offset_days * 86400))


def test_hazards(wd):
    """The hazard register over HTTP: the same rules as the alarm commands (login, CSRF, roles,
    `by` = the user), one command path (P/hazards/<id> and P/hazards/log change), 400/404/409."""
    broker, col, gw, port = setup(wd)
    viewer, op = Client(port), Client(port)
    viewer.login("zhao", "viewer-secret-1")
    op.login("wang", "op-secret-1")
    assert Client(port).call("GET", "/api/hazards")[0] == 401
    status, body, _ = viewer.call("GET", "/api/hazards")
    assert status == 200 and body == [], (status, body)

    found = {"category": "fire_equipment", "building": "A", "floor": "1", "zone": "east exit",
             "description": "灭火器压力不足 <b>x</b>", "responsible": "李工"}
    # A viewer looks, never acts; an operator's session needs its CSRF token.
    assert viewer.call("POST", "/api/hazards", found)[0] == 403
    status, body, _ = op.call("POST", "/api/hazards", found, csrf=False)
    assert status == 403 and "CSRF" in body["error"], body
    # Bad input: 400 with the reason, nothing recorded.
    for bad, why in [(b"{not json", "JSON"), ({}, "category"),
                     (dict(found, category="fire"), "categor"),
                     (dict(found, sudo=True), "sudo"),
                     (dict(found, deadline="2000-01-01T00:00:00Z"), "deadline"),
                     (dict(found, deadline="tomorrow"), "deadline"),
                     (dict(found, building=""), "building")]:
        status, body, _ = op.call("POST", "/api/hazards", bad)
        assert status == 400 and why in body["error"], (bad, status, body)
    assert viewer.call("GET", "/api/hazards")[1] == []

    # Recorded as the logged-in user, whatever the body says; through the desk (MQTT records).
    mark = col.mark()
    status, body, _ = op.call("POST", "/api/hazards", dict(found, by="intruder"))
    assert status == 200 and body["ok"] is True and body["cmd"] == "hazard/open", body
    assert body["status"] == "open" and body["hazard"].startswith("HZ-"), body
    hid = body["hazard"]
    rec = col.wait_json(f"{PREFIX}/hazards/{hid}", lambda t, o: True, 5, "P/hazards/<id>",
                        since=mark)
    assert rec["found_by"] == "wang" and rec["description"] == found["description"], rec
    entry = col.wait_json(f"{PREFIX}/hazards/log", lambda t, o: o["hazard"] == hid, 5,
                          "P/hazards/log", since=mark)
    assert entry["by"] == "wang" and entry["action"] == "open", entry

    status, lst, _ = viewer.call("GET", "/api/hazards")
    assert status == 200 and [h["id"] for h in lst] == [hid], lst
    h = lst[0]
    assert h["found_by"] == "wang" and h["responsible"] == "李工" and h["entries"] == 1, h
    assert h["status"] == "open" and h["overdue"] is False and "seq" not in h, h
    assert viewer.call("GET", "/api/hazards?status=open")[1][0]["id"] == hid
    assert viewer.call("GET", "/api/hazards?status=closed")[1] == []
    assert viewer.call("GET", "/api/hazards?status=overdue")[1] == []
    status, body, _ = viewer.call("GET", "/api/hazards?status=bogus")
    assert status == 400 and "status" in body["error"], body
    assert viewer.call("GET", "/api/hazards/HZ-20990101-001")[0] == 404
    assert viewer.call("GET", f"/api/hazards/{hid}/close")[0] == 404

    # The state machine, with the alarm commands' codes.
    assert viewer.call("POST", f"/api/hazards/{hid}/rectifying", {})[0] == 403
    status, body, _ = op.call("POST", f"/api/hazards/{hid}/rectifying", {"note": "ordered"})
    assert status == 200 and body["status"] == "rectifying" and body["hazard"] == hid, body
    status, body, _ = op.call("POST", f"/api/hazards/{hid}/rectifying", {})
    assert status == 409, (status, body)
    status, body, _ = op.call("POST", f"/api/hazards/{hid}/close", {"note": "replaced"})
    assert status == 400 and "verifier" in body["error"], body
    assert op.call("POST", f"/api/hazards/{hid}/explode", {})[0] == 404
    assert op.call("POST", f"/api/hazards/{hid}", {})[0] == 404
    assert op.call("POST", "/api/hazards/HZ-20990101-001/close",
                   {"note": "n", "verifier": "v"})[0] == 404
    assert op.call("POST", f"/api/hazards/{hid}/reopen", {})[0] == 409
    status, body, _ = op.call("POST", f"/api/hazards/{hid}/close",
                              {"note": "换了新灭火器", "verifier": "zhao"})
    assert status == 200 and body["status"] == "closed", body
    assert op.call("POST", f"/api/hazards/{hid}/close", {"note": "n", "verifier": "v"})[0] == 409
    assert op.call("POST", f"/api/hazards/{hid}/update", {"responsible": "x"})[0] == 409
    assert op.call("POST", f"/api/hazards/{hid}/reopen",
                   {"deadline": "2000-01-01T00:00:00Z"})[0] == 400
    status, body, _ = op.call("POST", f"/api/hazards/{hid}/reopen", {"note": "leaks again"})
    assert status == 200 and body["status"] == "open", body
    deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3 * 86400))
    status, body, _ = op.call("POST", f"/api/hazards/{hid}/update",
                              {"responsible": "赵工", "deadline": deadline})
    assert status == 200 and body["status"] == "open", body

    # A script with a bearer token: no CSRF, recorded as its user.
    script = Client(port)
    script.token = "script-token-0123456789"
    status, body, _ = script.call("POST", "/api/hazards",
                                  dict(found, category="electrical", description="socket"))
    assert status == 200, body
    second = body["hazard"]

    status, one, _ = viewer.call("GET", f"/api/hazards/{hid}")
    assert status == 200 and one["hazard"]["id"] == hid, one
    hist = one["history"]
    assert [e["action"] for e in hist] == ["open", "rectifying", "close", "reopen", "update"], hist
    assert all(e["by"] == "wang" for e in hist), hist
    assert hist[2]["note"] == "换了新灭火器" and hist[2]["fields"]["verified_by"] == "zhao", hist
    assert hist[4]["fields"]["responsible"] == "赵工", hist
    assert one["hazard"]["entries"] == 5 and one["hazard"]["responsible"] == "赵工", one
    lst = viewer.call("GET", "/api/hazards")[1]
    assert [h["id"] for h in lst] == [second, hid], lst  # newest first

    # The daily log of yesterday and today, as downloads; a day to come does not exist yet.
    for day, ext, ctype in [(iso_day(-1), "md", "text/markdown; charset=utf-8"),
                            (iso_day(0), "csv", "text/csv; charset=utf-8")]:
        status, text, r = viewer.call("GET", f"/api/logs/{day}.{ext}")
        assert status == 200, (day, status, text)
        assert r.getheader("Content-Type") == ctype, r.getheader("Content-Type")
        disp = r.getheader("Content-Disposition")
        assert disp == f'attachment; filename="test-school-{day}.{ext}"', disp
        assert len(text) > 0, text
    status, text, r = viewer.call("GET", f"/api/logs/{iso_day(0)}.md")
    assert "Test School" in text, text[:400]
    status, body, _ = viewer.call("GET", f"/api/logs/{iso_day(2)}.md")
    assert status == 404 and "future" in body["error"], body
    for bad in ("2025-13-01.md", "2025-02-30.md", "yesterday.md", "2025-11-27.pdf",
                "..%2Fstate.db"):
        assert viewer.call("GET", f"/api/logs/{bad}")[0] == 404, bad
    assert Client(port).call("GET", f"/api/logs/{iso_day(-1)}.md")[0] == 401


def test_hazard_register_invalid(wd):
    """A hazard_log row edited behind the gateway's back: the API says so with 503 and refuses
    every hazard command, the rest of the API goes on."""
    broker, col, gw, port = setup(wd)
    op = Client(port)
    op.login("wang", "op-secret-1")
    found = {"category": "other", "building": "B", "description": "loose railing",
             "responsible": "li"}
    status, body, _ = op.call("POST", "/api/hazards", found)
    assert status == 200, body
    hid = body["hazard"]
    assert gw.stop() == 0
    import sqlite3
    con = sqlite3.connect(f"{wd.path}/state/state.db")
    con.execute("DROP TRIGGER hazard_log_no_update")
    con.execute("UPDATE hazard_log SET entry = replace(entry, 'loose railing', 'fine railing')")
    con.commit()
    con.close()
    start = len(gw.output())
    gw.start()
    gw.wait_output("INFO http: listening", 10, start)
    op = Client(port)
    op.login("wang", "op-secret-1")
    status, body, _ = op.call("GET", "/api/hazards")
    assert status == 503 and "hazard register cannot be used: seq 1" in body["error"], body
    assert op.call("GET", f"/api/hazards/{hid}")[0] == 503
    status, body, _ = op.call("POST", "/api/hazards", found)
    assert status == 503, (status, body)
    status, body, _ = op.call("POST", f"/api/hazards/{hid}/rectifying", {})
    assert status == 503, (status, body)
    assert op.call("GET", "/api/alarms")[0] == 200


if __name__ == "__main__":
    run([test_api, test_live_stream, test_failed_logins_are_rate_limited, test_hazards,
         test_hazard_register_invalid])
