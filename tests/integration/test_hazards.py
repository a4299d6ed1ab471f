#!/usr/bin/python3
"""The hazard register in the running gateway (issue 7), against a real mosquitto.

P/cmd/hazard/open|update|rectifying|close|reopen and their results; the
retained P/hazards/<id>; every P/hazards/log entry, whose SHA-256 chain is
recomputed here from hazards.h's canonical JSON; bad commands refused with a
clear error and nothing written; a deadline that passes ("overdue" entry, the
system alarm <id>/overdue told to hazards.escalation's contact, cleared by
closing, its escalation state kept over a restart); a hazard opened by a
supervisory alarm of a rule in hazards.auto_open; the chain continuing after a
restart; a hazard_log row edited behind the gateway's back (triggers dropped)
raising gateway/hazard-register-invalid and every command refused. At the
end every row of state.db's hazard_log is checked against what was published.
"""

import hashlib
import json
import os
import re
import socket
import sqlite3
import threading
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt
from harness import (PREFIX, Collector, Gateway, Mosquitto, log, retained, run, site_config,
                     state_db_rows, wait_for)

HYDRANT = "A-1F-hydrant-01"
HYDRANT_KEY = f"{HYDRANT}/hydrant-pressure-low"
DEADLINE_S = 3  # the first hazard falls overdue this long after it is opened

BODY = f'''
profiles = {{
  hydrant = {{ codec = "json"; values = ( {{ name = "pressure"; path = "p"; type = "number";
                                            unit = "MPa"; }} ); }};
}};
sensors = (
  {{ id = "{HYDRANT}"; kind = "hydrant_pressure"; profile = "hydrant"; expect_every_s = 0;
     mqtt = {{ topic = "src/hydrant"; }};
     location = {{ building = "A"; floor = "1"; zone = "east stair"; }}; }},
  {{ id = "ping"; kind = "ping"; profile = "hydrant"; expect_every_s = 0;
     mqtt = {{ topic = "src/ping"; }}; }}
);
rules = (
  {{ name = "hydrant pressure low"; kind = "hydrant_pressure"; point = "pressure"; below = 0.1;
     class = "supervisory"; }}
);
contacts = {{
  facilities = ( {{ mqtt = "notify/facilities"; }} );
  principal = ( {{ mqtt = "notify/principal"; }} );
}};
escalation = {{
  supervisory = ( {{ after_s = 0; notify = [ "facilities" ]; }} );
  alarm = ( {{ after_s = 0; notify = [ "facilities" ]; }} );
}};
hazards = {{
  auto_open = [ "hydrant pressure low" ];
  escalation = ( {{ after_s = 0; notify = [ "principal" ]; }} );
}};
selftest = {{ enabled = false; }};
'''

CN = timezone(timedelta(hours=8))


# ---- the chain, as hazards.h defines it ----

def entry_hash(entry):
    body = {k: v for k, v in entry.items() if k != "hash"}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def verify_chain(entries):
    prev = "0" * 64
    for i, e in enumerate(entries, 1):
        assert e["seq"] == i, f"entry {i} has seq {e['seq']}"
        assert e["prev_hash"] == prev, f"seq {i}: prev_hash breaks the chain"
        assert entry_hash(e) == e["hash"], f"seq {i}: hash does not match its content"
        prev = e["hash"]


# ---- the school ----

class School:
    def __init__(self, wd):
        self.wd = wd
        self.broker = Mosquitto(wd).start()
        self.col = Collector(self.broker.port, f"{PREFIX}/#")
        self.gw = Gateway(wd, site_config(wd.path, self.broker.port, BODY))
        self.nid = 0
        self.ping = 0.0
        self.sensors = mqtt.Client(client_id=f"sensors-{os.getpid()}")
        connected = threading.Event()
        self.sensors.on_connect = lambda c, u, f, rc: connected.set()
        self.sensors.connect("127.0.0.1", self.broker.port)
        self.sensors.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sensors.loop_start()
        wait_for(connected.is_set, 10, "the sensors' client to connect")

    def start(self):
        pos = len(self.gw.output())
        self.gw.start()
        wait_for(lambda: "INFO mqtt_source: subscribed" in self.gw.output()[pos:], 15,
                 "the MQTT sources to subscribe")

        def ping():  # a reading through: the source subscriptions are in place
            mark = self.col.mark()
            self.ping += 1
            self.reading("ping", self.ping)
            try:
                return self.col.wait_json(f"{PREFIX}/telemetry/ping", lambda t, o: True, 1,
                                          "ping telemetry", since=mark)
            except AssertionError:
                return None
        wait_for(ping, 30, "a ping reading")

        def probe():  # a hazard command answered: P/cmd/hazard/+ is subscribed
            try:
                return self.cmd("rectifying", timeout=1, hazard="HZ-00000000-000", by="probe")
            except AssertionError:
                return None
        wait_for(probe, 30, "an answer to P/cmd/hazard/rectifying")

    def reading(self, sensor, pressure):
        topic = "src/hydrant" if sensor == HYDRANT else f"src/{sensor}"
        self.sensors.publish(topic, json.dumps({"p": pressure}), qos=1).wait_for_publish()

    def cmd(self, name, timeout=10, **fields):
        """P/cmd/hazard/<name> with a fresh request id; its P/cmd/result."""
        self.nid += 1
        rid = f"hz-{self.nid}"
        mark = self.col.mark()
        self.col.publish(f"{PREFIX}/cmd/hazard/{name}",
                         json.dumps(dict(fields, id=rid), ensure_ascii=False))
        res = self.col.wait_json(f"{PREFIX}/cmd/result", lambda t, o: o.get("id") == rid,
                                 timeout, f"the result of hazard/{name}", since=mark)
        log(f"hazard/{name} {fields} -> {res}")
        assert res["cmd"] == f"hazard/{name}", res
        return res

    def raw(self, name, payload):
        """Bytes on P/cmd/hazard/<name>; the next result for that command without an id."""
        mark = self.col.mark()
        self.col.publish(f"{PREFIX}/cmd/hazard/{name}", payload)
        res = self.col.wait_json(f"{PREFIX}/cmd/result",
                                 lambda t, o: o.get("cmd") == f"hazard/{name}" and "id" not in o,
                                 10, f"the result of raw hazard/{name}", since=mark)
        log(f"raw hazard/{name} {payload[:60]!r} -> {res}")
        return res

    def log_entries(self):
        """P/hazards/log entries by seq (at least once: a repeat must be identical)."""
        by_seq = {}
        for topic, payload, _, _ in self.col.all(f"{PREFIX}/hazards/log"):
            if topic != f"{PREFIX}/hazards/log":
                continue
            e = json.loads(payload)
            if e["seq"] in by_seq:
                assert by_seq[e["seq"]] == payload, f"seq {e['seq']} published twice, different"
            by_seq[e["seq"]] = payload
        return by_seq

    def wait_entry(self, pred, what, timeout=10):
        def find():
            for raw in self.log_entries().values():
                e = json.loads(raw)
                if pred(e):
                    return e
            return None
        return wait_for(find, timeout, what)

    def hazard(self, hid):
        topic = f"{PREFIX}/hazards/{hid}"
        got = retained(self.broker.port, topic)
        return json.loads(got[topic]) if got.get(topic) else None

    def alarm(self, key):
        topic = f"{PREFIX}/alarms/{key}"
        got = retained(self.broker.port, topic)
        return json.loads(got[topic]) if got.get(topic) else None

    def notes(self, contact, key, kind=None, since=0):
        return [o for t, o, _, _ in self.col.json_since(since, f"{PREFIX}/notify/{contact}")
                if o and o.get("key") == key and (kind is None or o.get("kind") == kind)]

    def rows(self):
        return state_db_rows(self.wd.path, "SELECT n, hazard, at, entry FROM hazard_log ORDER BY n")

    def close(self):
        self.sensors.loop_stop()
        self.sensors.disconnect()
        self.col.close()


def refused(res, *words):
    assert res["ok"] is False, res
    err = res.get("error") or ""
    assert err, f"no error text: {res}"
    for w in words:
        assert w.lower() in err.lower(), f"error {err!r} lacks {w!r}"


# ---- the scenario ----

def test_hazard_register(wd):
    s = School(wd)
    s.start()

    # open: the deadline a few seconds ahead, given with a +08:00 offset
    deadline = (datetime.now(CN) + timedelta(seconds=DEADLINE_S)).isoformat(timespec="milliseconds")
    r = s.cmd("open", by="李老师", category="fire_equipment", building="A", floor="1",
              zone="east stair", description="灭火器缺失 (extinguisher missing)",
              responsible="王工", deadline=deadline, note="found on patrol")
    assert r["ok"] is True and r["status"] == "open", r
    hz1 = r["hazard"]
    assert re.fullmatch(r"HZ-\d{8}-001", hz1), r
    e1 = s.wait_entry(lambda e: e["seq"] == 1, "entry 1")
    assert e1["action"] == "open" and e1["hazard"] == hz1 and e1["by"] == "李老师", e1
    assert e1["fields"]["deadline"] == int(datetime.fromisoformat(deadline).timestamp() * 1000)
    assert hz1 == "HZ-" + datetime.fromtimestamp(e1["at"] / 1000, timezone.utc).strftime(
        "%Y%m%d") + "-001"
    h = wait_for(lambda: s.hazard(hz1), 5, "retained P/hazards/<id>")
    assert h["status"] == "open" and h["responsible"] == "王工" and h["entries"] == 1, h
    assert h["description"] == "灭火器缺失 (extinguisher missing)" and h["overdue"] is False, h
    assert h["found_by"] == "李老师" and h["source_alarm"] == "" and h["verified_by"] == "", h

    r = s.cmd("update", hazard=hz1, by="李老师", responsible="刘师傅")
    assert r["ok"] is True and r["hazard"] == hz1 and r["status"] == "open", r
    r = s.cmd("rectifying", hazard=hz1, by="刘师傅", note="ordered a new one")
    assert r["ok"] is True and r["status"] == "rectifying", r
    s.wait_entry(lambda e: e["seq"] == 3, "entry 3")

    # refused with a clear error, nothing written
    rows_before = s.rows()
    mark = s.col.mark()
    refused(s.cmd("close", hazard=hz1, by="x", verifier="v"), "note")
    refused(s.cmd("close", hazard=hz1, by="x", note="fixed"), "verifier")
    refused(s.cmd("reopen", hazard=hz1, by="x"), "not allowed while rectifying")
    refused(s.cmd("rectifying", hazard="HZ-20000101-001", by="x"), "unknown hazard")
    refused(s.cmd("update", hazard=hz1, by="x", colour="red"), "unknown key")
    refused(s.cmd("update", hazard=hz1, by="x", deadline="next week"), "deadline")
    refused(s.cmd("update", hazard=hz1, by="x", deadline="2001-01-01T00:00:00Z"), "later than now")
    refused(s.cmd("update", hazard=hz1, by="x"), "responsible, deadline or description")
    refused(s.cmd("update", by="x", responsible="y"), "hazard")
    refused(s.cmd("open", by="x", category="kitchen", building="A", description="d",
                  responsible="y"), "category")
    refused(s.cmd("open", category="other", building="A", description="d", responsible="y"),
            "by")
    refused(s.cmd("open", by="x", category="other", description="d", responsible="y"), "building")
    refused(s.raw("open", b'{"by": "x", '), "JSON")
    refused(s.raw("open", b"\xff\xfe"), "JSON")
    refused(s.raw("delete", b"{}"), "unknown hazard command")
    r = s.cmd("open", by="x" * 60, category="other", building="A", description="d",
              responsible="y")
    refused(r, "by", "too long")
    assert s.rows() == rows_before
    assert not s.col.since(mark, f"{PREFIX}/hazards/"), "a refused command published something"

    # overdue: an entry by the gateway and the system alarm told to the principal only
    overdue_key = f"{hz1}/overdue"
    e4 = s.wait_entry(lambda e: e["action"] == "overdue", "the overdue entry",
                      timeout=DEADLINE_S + 10)
    assert e4["seq"] == 4 and e4["by"] == "" and e4["fields"] == {"overdue": True}, e4
    note = wait_for(lambda: s.notes("principal", overdue_key, "raise"), 10,
                    "the overdue notification to the principal")[0]
    text = note["text"]
    log(f"overdue notification: {text!r}")
    for part in ("[HAZARD OVERDUE]", hz1, "Building A", "east stair", "灭火器缺失",
                 "responsible 刘师傅", "deadline", "passed"):
        assert part in text, f"{part!r} not in {text!r}"
    assert note["class"] == "supervisory" and note["level"] == 1, note
    assert note["hazard"]["id"] == hz1 and note["hazard"]["responsible"] == "刘师傅", note
    assert not s.notes("facilities", overdue_key), "hazards.escalation replaces supervisory's"
    a = wait_for(lambda: s.alarm(overdue_key), 5, "the retained overdue alarm")
    assert a["state"] == "unacked" and a["class"] == "supervisory", a
    assert a["rule"] == "hazard overdue", a
    h = wait_for(lambda: (s.hazard(hz1) or {}).get("overdue") and s.hazard(hz1), 5,
                 "the hazard shown overdue")
    assert h["status"] == "rectifying" and h["entries"] == 4, h

    # a restart: the register, its records and the escalation state are kept
    s.gw.stop()
    s.start()
    assert s.hazard(hz1)["entries"] == 4
    mark = s.col.mark()
    r = s.cmd("close", hazard=hz1, by="刘师傅", note="new extinguisher hung, pressure ok",
              verifier="陈主任")
    assert r["ok"] is True and r["status"] == "closed", r
    e5 = s.wait_entry(lambda e: e["seq"] == 5, "entry 5 after the restart")
    assert e5["action"] == "close" and e5["prev_hash"] == e4["hash"], e5
    # closing clears the overdue alarm (acknowledged by the closer) and tells whom the raise told
    wait_for(lambda: s.alarm(overdue_key) is None, 5, "the overdue alarm gone")
    clear = wait_for(lambda: s.notes("principal", overdue_key, "clear", since=mark), 10,
                     "the clear to the principal")[0]
    assert "no longer overdue" in clear["text"], clear
    acks = [o for _, o, _, _ in s.col.json_since(mark, f"{PREFIX}/events")
            if o and o.get("key") == overdue_key and o.get("transition") == "ack"]
    assert acks and acks[0]["by"] == "刘师傅", acks
    assert not s.notes("principal", overdue_key, "raise", since=mark), "told twice"
    h = wait_for(lambda: (s.hazard(hz1) or {}).get("status") == "closed" and s.hazard(hz1), 5,
                 "the hazard closed")
    assert h["verified_by"] == "陈主任" and h["overdue"] is True, h

    far = int((datetime.now(timezone.utc) + timedelta(days=3)).timestamp() * 1000)
    r = s.cmd("reopen", hazard=hz1, by="陈主任", deadline=far, note="leaks again")
    assert r["ok"] is True and r["status"] == "open", r

    # auto-open: the hydrant's supervisory alarm opens a hazard of its own
    s.reading(HYDRANT, 0.03)
    e7 = s.wait_entry(lambda e: e["seq"] == 7, "the auto-opened hazard's entry")
    assert e7["action"] == "open" and e7["by"] == "", e7
    hz2 = e7["hazard"]
    assert hz2.endswith("-002"), hz2
    h2 = wait_for(lambda: s.hazard(hz2), 5, "the auto-opened hazard")
    assert h2["source_alarm"] == HYDRANT_KEY and h2["category"] == "fire_equipment", h2
    assert (h2["building"], h2["floor"], h2["zone"]) == ("A", "1", "east stair"), h2
    assert "hydrant pressure low" in h2["description"] and HYDRANT in h2["description"], h2
    # the alarm raised again while its hazard is open opens nothing more
    s.reading(HYDRANT, 0.5)
    s.reading(HYDRANT, 0.02)
    wait_for(lambda: len([o for _, o, _, _ in s.col.json(f"{PREFIX}/events")
                          if o and o.get("key") == HYDRANT_KEY
                          and o.get("transition") == "raise"]) >= 2, 10, "the second raise")
    r = s.cmd("update", hazard=hz2, by="陈主任", responsible="刘师傅")
    assert r["ok"] is True, r
    s.wait_entry(lambda e: e["seq"] == 8, "entry 8")
    assert max(s.log_entries()) == 8

    # an overdue alarm is acknowledged like any other: its own escalation stops telling
    soon = (datetime.now(timezone.utc) + timedelta(seconds=2)).isoformat(timespec="seconds")
    r = s.cmd("update", hazard=hz2, by="陈主任", deadline=soon.replace("+00:00", "Z"))
    assert r["ok"] is True, r
    overdue2 = f"{hz2}/overdue"
    s.wait_entry(lambda e: e["seq"] == 10 and e["action"] == "overdue", "hazard 2 overdue")
    note = wait_for(lambda: s.notes("principal", overdue2, "raise"), 10, "hazard 2 told")[0]
    assert "responsible 刘师傅" in note["text"] and "(sensor" not in note["text"], note
    mark = s.col.mark()
    s.col.publish(f"{PREFIX}/cmd/ack", json.dumps({"key": overdue2, "by": "陈主任", "id": "ack-1"}))
    res = s.col.wait_json(f"{PREFIX}/cmd/result", lambda t, o: o.get("id") == "ack-1", 10,
                          "the ack's result", since=mark)
    assert res["ok"] is True and res["state"] == "acked", res

    def stopped():
        rows = state_db_rows(wd.path, "SELECT value FROM kv WHERE key = ?", (f"esc.{overdue2}",))
        return rows and json.loads(rows[0][0]).get("stopped") is True
    wait_for(stopped, 10, "the overdue alarm's escalation stopped on disk")

    published = [json.loads(p) for _, p in sorted(s.log_entries().items())]
    verify_chain(published)
    rows = s.rows()
    assert [n for n, _, _, _ in rows] == list(range(1, 11)), rows
    for (n, hazard, at, entry), e in zip(rows, published):
        assert json.loads(entry) == e and hazard == e["hazard"] and at == e["at"], n
        assert entry == s.log_entries()[n].decode(), f"row {n} differs from what was published"

    # tampered: the triggers dropped and entry 2 rewritten behind the gateway's back
    s.gw.stop()
    db = sqlite3.connect(os.path.join(wd.path, "state.db"))
    db.execute("DROP TRIGGER hazard_log_no_update")
    db.execute("UPDATE hazard_log SET entry = replace(entry, '刘师傅', '张三') WHERE n = 2")
    db.commit()
    db.close()
    tampered = s.rows()
    assert tampered[1][3] != rows[1][3]
    pos = len(s.gw.output())
    s.start()
    assert "register invalid: seq 2" in s.gw.output()[pos:]
    a = wait_for(lambda: s.alarm("gateway/hazard-register-invalid"), 10,
                 "the hazard-register-invalid alarm")
    assert a["class"] == "trouble" and a["value"] == "seq 2", a
    assert "seq 2" in a["rule"], a
    mark = s.col.mark()
    refused(s.cmd("update", hazard=hz2, by="x", responsible="y"), "register is invalid", "seq 2")
    refused(s.cmd("open", by="x", category="other", building="A", description="d",
                  responsible="y"), "register is invalid")
    assert not s.col.since(mark, f"{PREFIX}/hazards/log")

    # no row lost, none changed but the one edited by hand
    assert s.rows() == tampered
    assert [r[3] for r in tampered[:1] + tampered[2:]] == [r[3] for r in rows[:1] + rows[2:]]
    s.close()


if __name__ == "__main__":
    run([test_hazard_register])
