#!/usr/bin/python3
"""The daily path self-test (here started with SIGUSR2): a test alarm goes through the store, the
hub, the uplink and the mqtt contacts of level 1, each hop timed on P/status, then clears itself.
One that cannot reach a hop within selftest.timeout_s raises gateway/self-test-failed."""

import json
import signal

from harness import (PREFIX, Collector, Gateway, Mosquitto, free_port, log, retained, run,
                     site_config, wait_for)

PEOPLE = """
contacts = { facilities = ( { mqtt = "notify/facilities"; } ); };
escalation = { trouble = ( { after_s = 0; notify = [ "facilities" ]; } );
               alarm = ( { after_s = 0; notify = [ "facilities" ]; } ); };
selftest = { at = "03:00"; timeout_s = 10; };
"""


def status(col, mark):
    return [o for _, o, _, _ in col.json_since(mark, f"{PREFIX}/status") if o.get("selftest")]


def test_selftest_passes_every_hop(wd):
    hub = Mosquitto(wd, name="hub").start()
    uplink = Mosquitto(wd, name="uplink").start()
    col = Collector(hub.port, f"{PREFIX}/#")
    district = Collector(uplink.port, f"{PREFIX}/#")
    body = PEOPLE + f'uplink = {{ host = "127.0.0.1"; port = {uplink.port}; }};\n'
    gw = Gateway(wd, site_config(f"{wd.path}/state", hub.port, body)).start()
    wait_for(lambda: retained(uplink.port, f"{PREFIX}/status"), 10, "the uplink connected")
    mark = col.mark()
    gw.proc.send_signal(signal.SIGUSR2)
    st = wait_for(lambda: status(col, mark), 10, "the self-test result on P/status")[-1]
    log(f"self-test hops: {st['selftest']}")
    s = st["selftest"]
    assert s["ok"] is True and "failed_at" not in s, s
    for hop in ("store_ms", "hub_ms", "uplink_ms", "notify_ms"):
        assert 0 <= s[hop] < 10000, s
    # The facilities contact heard of it and of its end; the district saw the test alarm.
    # P/status can arrive before the clear's notification: both come, in this order.
    notes = wait_for(lambda: (lambda n: n if len(n) >= 2 else None)(
        [o for _, o, _, _ in col.json_since(mark, f"{PREFIX}/notify/facilities")]), 5,
        "the raise and clear notifications")
    assert [n["kind"] for n in notes] == ["raise", "clear"], notes
    assert all(n["key"] == "gateway/path-self-test" and n["test"] for n in notes), notes
    ev = wait_for(lambda: (lambda e: e if len(e) >= 3 else None)(
        [o["transition"] for _, o, _, _ in district.json(f"{PREFIX}/events")
         if o["key"] == "gateway/path-self-test"]), 5, "the test alarm's events on the uplink")
    assert ev == ["raise", "ack", "clear"], ev
    wait_for(lambda: f"{PREFIX}/alarms/gateway/path-self-test" not in
             retained(hub.port, f"{PREFIX}/alarms/#"), 5, "the test alarm gone")
    assert "gateway/self-test-failed" not in json.dumps(col.json(f"{PREFIX}/events"))


def test_selftest_fails_when_the_uplink_is_down(wd):
    hub = Mosquitto(wd, name="hub").start()
    col = Collector(hub.port, f"{PREFIX}/#")
    body = PEOPLE + f'uplink = {{ host = "127.0.0.1"; port = {free_port()}; }};\n'  # nobody there
    gw = Gateway(wd, site_config(f"{wd.path}/state", hub.port, body)).start()
    mark = col.mark()
    gw.proc.send_signal(signal.SIGUSR2)
    st = wait_for(lambda: status(col, mark), 20, "the failed self-test on P/status")[-1]
    s = st["selftest"]
    assert s["ok"] is False and s["failed_at"] == "uplink", s
    assert "uplink_ms" not in s and s["hub_ms"] >= 0, s
    a = wait_for(lambda: retained(hub.port, f"{PREFIX}/alarms/gateway/self-test-failed").get(
        f"{PREFIX}/alarms/gateway/self-test-failed"), 5, "the self-test-failed alarm")
    a = json.loads(a)
    assert a["state"] == "unacked" and a["class"] == "trouble" and a["value"] == "uplink", a
    notes = [o for _, o, _, _ in col.json_since(mark, f"{PREFIX}/notify/facilities")
             if o["key"] == "gateway/self-test-failed"]
    assert notes and notes[0]["test"] is False, notes
    assert "path self-test FAILED" in gw.output()


if __name__ == "__main__":
    run([test_selftest_passes_every_hop, test_selftest_fails_when_the_uplink_is_down])
