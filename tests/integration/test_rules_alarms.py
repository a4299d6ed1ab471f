#!/usr/bin/python3
"""Rules end to end: on_delay, deadband, equals, latch; retained P/alarms and P/events."""

import json
import math
import time

from harness import (PREFIX, Collector, Gateway, ModbusSlave, Mosquitto, log, retained, run,
                     site_config, telemetry_values, wait_for)

ON_DELAY = 3


def raw(mpa):
    """4-20 mA raw of a hydrant pressure (4000..20000 -> 0..1.6 MPa)."""
    return round(4000 + mpa / 1.6 * 16000)


def setup(wd):
    broker = Mosquitto(wd).start()
    slave = ModbusSlave(wd, {1: {"holding": [raw(0.5)]}, 2: {"holding": [0, 90]},
                             3: {"holding": [raw(0.5)]}}).start()
    cfg = site_config(wd.path, broker.port, f'''
modbus = ( {{ name = "bus"; tcp = "127.0.0.1:{slave.port}"; timeout_ms = 300; }} );
profiles = {{
  hydrant = {{ points = ( {{ name = "pressure"; unit = "MPa"; address = 0; type = "u16";
                           raw_min = 4000; raw_max = 20000; min = 0.0; max = 1.6; }} ); }};
  door = {{ points = ( {{ name = "state"; address = 0; }}, {{ name = "battery"; address = 1; }} ); }};
}};
sensors = (
  {{ id = "hyd-1"; kind = "hydrant_pressure"; profile = "hydrant"; modbus = "bus"; unit_id = 1; interval_s = 1; }},
  {{ id = "door-1"; kind = "exit_door"; profile = "door"; modbus = "bus"; unit_id = 2; interval_s = 1; }},
  {{ id = "hyd-3"; kind = "tank"; profile = "hydrant"; modbus = "bus"; unit_id = 3; interval_s = 1; }}
);
rules = (
  {{ name = "Pressure LOW"; kind = "hydrant_pressure"; point = "pressure"; below = 0.10;
     deadband = 0.02; on_delay_s = {ON_DELAY}; class = "supervisory"; }},
  {{ name = "exit locked"; kind = "exit_door"; point = "state"; equals = 2; class = "supervisory"; }},
  {{ name = "over pressure"; sensor = "hyd-3"; point = "pressure"; above = 1.2; latch = true;
     class = "trouble"; }}
);
''')
    col = Collector(broker.port, f"{PREFIX}/#")
    gw = Gateway(wd, cfg).start()
    for s in ("hyd-1", "door-1", "hyd-3"):
        col.wait_json(f"{PREFIX}/telemetry/{s}", lambda t, o: True, 10, f"{s} telemetry")
    return broker, slave, col, gw


def events(col, key, since=0):
    return [o for _, o, _, _ in col.json_since(since, f"{PREFIX}/events") if o and o["key"] == key]


def alarm(broker, key):
    topic = f"{PREFIX}/alarms/{key}"
    got = retained(broker.port, topic)
    return json.loads(got[topic]) if got.get(topic) else None


def wait_polls(col, sensor, n, pred=lambda o: True, timeout=10):
    """Wait until n more telemetry messages of sensor arrived that satisfy pred."""
    start = len(telemetry_values(col, PREFIX, sensor))
    wait_for(lambda: sum(1 for o in telemetry_values(col, PREFIX, sensor)[start:] if pred(o)) >= n,
             timeout, f"{n} more polls of {sensor}")


def command(col, name, body):
    """Send P/cmd/<name> and return its P/cmd/result (matched by id)."""
    cid = f"t{time.monotonic_ns()}"
    mark = col.mark()
    col.publish(f"{PREFIX}/cmd/{name}", json.dumps(dict(body, id=cid)))
    return col.wait_json(f"{PREFIX}/cmd/result", lambda t, o: o.get("id") == cid, 5,
                         f"the result of {name}", since=mark)


def test_on_delay_and_deadband(wd):
    broker, slave, col, gw = setup(wd)
    key = "hyd-1/pressure-low"
    mark = col.mark()
    slave.set(1, "holding", 0, raw(0.05))
    t_low = time.monotonic()
    ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == key, ON_DELAY + 6,
                       "the raise event", since=mark)
    t_raise = [m[3] for m in col.since(mark, f"{PREFIX}/events")][0]
    log(f"raised {t_raise - t_low:.2f} s after the low value was set (on_delay {ON_DELAY} s)")
    assert t_raise - t_low >= ON_DELAY - 0.5, f"raised after {t_raise - t_low:.2f} s < on_delay"
    assert t_raise - t_low <= ON_DELAY + 3, f"raised only after {t_raise - t_low:.2f} s"
    assert ev["transition"] == "raise" and ev["class"] == "supervisory", ev
    assert ev["state"] == "unacked" and math.isclose(ev["value"], 0.05, abs_tol=1e-9), ev
    assert ev["rule"] == "Pressure LOW" and ev["sensor"] == "hyd-1", ev
    a = wait_for(lambda: alarm(broker, key), 5, "retained alarm")
    assert a["state"] == "unacked" and a["class"] == "supervisory", a
    assert math.isclose(a["value"], 0.05, abs_tol=1e-9) and a["raised_at"] and not a["cleared_at"], a
    assert "transition" not in a, a

    # 0.11 is above the threshold but inside the deadband (clears at 0.12): stays raised.
    mark = col.mark()
    slave.set(1, "holding", 0, raw(0.11))
    wait_polls(col, "hyd-1", 3, lambda o: math.isclose(o["values"].get("pressure", -1), 0.11,
                                                       abs_tol=1e-9))
    assert events(col, key, mark) == [], f"cleared inside the deadband: {events(col, key, mark)}"
    assert alarm(broker, key)["state"] == "unacked"

    # 0.15 is past threshold + deadband: clears, but nobody has acknowledged it yet
    # (ISA-18.2: returned to normal, unacknowledged): it stays retained until acked.
    slave.set(1, "holding", 0, raw(0.15))
    ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == key, 5, "the clear event",
                       since=mark)
    assert ev["transition"] == "clear" and math.isclose(ev["value"], 0.15, abs_tol=1e-9), ev
    assert ev["cleared_at"] and ev["state"] == "rtn_unacked" and ev["condition"] is False, ev
    a = wait_for(lambda: (alarm(broker, key) or {}).get("state") == "rtn_unacked" and
                 alarm(broker, key), 5, "retained rtn_unacked")
    assert a["cleared_at"], a
    r = command(col, "ack", {"key": key, "by": "王师傅", "note": "valve checked"})
    assert r["ok"] is True and r["state"] == "normal" and r["key"] == key, r
    ack = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == key and
                        o["transition"] == "ack", 5, "the ack event", since=mark)
    assert ack["by"] == "王师傅" and ack["note"] == "valve checked", ack
    wait_for(lambda: [m for m in col.since(mark, f"{PREFIX}/alarms/{key}") if m[1] == b""], 5,
             "empty payload on the alarm topic")
    wait_for(lambda: f"{PREFIX}/alarms/{key}" not in retained(broker.port, f"{PREFIX}/alarms/#"),
             5, "no retained alarm after the clear")
    assert len([e for e in events(col, key) if e["transition"] == "raise"]) == 1
    assert "WARN alarm: raised key=hyd-1/pressure-low class=supervisory" in gw.output()
    assert "INFO alarm: cleared key=hyd-1/pressure-low" in gw.output()


def test_short_dip_does_not_raise(wd):
    broker, slave, col, gw = setup(wd)
    key = "hyd-1/pressure-low"
    mark = col.mark()
    slave.set(1, "holding", 0, raw(0.05))
    wait_polls(col, "hyd-1", 1, lambda o: o["values"].get("pressure", 1) < 0.1)
    slave.set(1, "holding", 0, raw(0.5))  # back well before on_delay
    wait_polls(col, "hyd-1", ON_DELAY + 2, lambda o: o["values"].get("pressure", 0) > 0.4,
               timeout=ON_DELAY + 8)
    assert events(col, key, mark) == [], events(col, key, mark)
    assert alarm(broker, key) is None


def test_equals_door(wd):
    broker, slave, col, gw = setup(wd)
    key = "door-1/exit-locked"
    mark = col.mark()
    slave.set(2, "holding", 0, 1)  # open: not locked
    wait_polls(col, "door-1", 2, lambda o: o["values"].get("state") == 1)
    assert events(col, key, mark) == []
    slave.set(2, "holding", 0, 2)
    ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == key, 5, "locked raise",
                       since=mark)
    assert ev["transition"] == "raise" and ev["value"] == 2 and ev["class"] == "supervisory", ev
    a = wait_for(lambda: alarm(broker, key), 5, "retained door alarm")
    assert a["state"] == "unacked" and a["value"] == 2, a
    mark = col.mark()
    slave.set(2, "holding", 0, 0)
    ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == key, 5, "unlocked clear",
                       since=mark)
    assert ev["transition"] == "clear" and ev["value"] == 0, ev
    assert ev["state"] == "rtn_unacked", ev
    # Acknowledged first, then unlocked: acked -> normal at the clear, nothing left.
    slave.set(2, "holding", 0, 2)
    col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == key and o["transition"] == "raise",
                  5, "locked again", since=mark)
    assert command(col, "ack", {"key": key, "by": "li"})["state"] == "acked"
    mark = col.mark()
    slave.set(2, "holding", 0, 0)
    ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == key, 5, "unlocked clear",
                       since=mark)
    assert ev["transition"] == "clear" and ev["state"] == "normal", ev
    wait_for(lambda: alarm(broker, key) is None, 5, "door alarm retained cleared")


def test_latch(wd):
    broker, slave, col, gw = setup(wd)
    key = "hyd-3/over-pressure"
    mark = col.mark()
    slave.set(3, "holding", 0, raw(1.5))
    ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == key, 5, "latch raise",
                       since=mark)
    assert ev["transition"] == "raise" and ev["class"] == "trouble", ev
    assert math.isclose(ev["value"], 1.5, abs_tol=1e-9), ev
    slave.set(3, "holding", 0, raw(0.5))
    wait_polls(col, "hyd-3", 4, lambda o: math.isclose(o["values"].get("pressure", 0), 0.5,
                                                       abs_tol=1e-9))
    # The condition is gone, the alarm is not: it waits for a person (ack + reset).
    a = wait_for(lambda: (alarm(broker, key) or {}).get("needs_reset") and alarm(broker, key), 5,
                 "latched alarm waiting for reset")
    assert a["state"] == "unacked" and a["condition"] is False, a
    r = command(col, "reset", {"key": key, "by": "li"})
    assert r["ok"] is False and "acknowledge first" in r["error"], r
    assert command(col, "ack", {"key": key, "by": "li"})["state"] == "acked"
    assert alarm(broker, key)["state"] == "acked"
    r = command(col, "reset", {"key": key, "by": "li"})
    assert r["ok"] is True and r["state"] == "normal", r
    wait_for(lambda: alarm(broker, key) is None, 5, "latched alarm gone after reset")
    # The other rules saw nothing.
    assert events(col, "hyd-1/pressure-low") == [] and events(col, "door-1/exit-locked") == []


if __name__ == "__main__":
    run([test_on_delay_and_deadband, test_short_dip_does_not_raise, test_equals_door, test_latch])
