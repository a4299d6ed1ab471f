#!/usr/bin/python3
"""Flood control: a Modbus bus whose slave dies takes all its sensors offline at once. Their
offline alarms are recorded, but people get one alarm for the bus, listing the sensors it
explains, instead of one per sensor; a single silent device on another bus is told as usual."""

import json

from harness import (PREFIX, Collector, Gateway, ModbusSlave, Mosquitto, log, retained, run,
                     site_config, wait_for)

N = 4


def test_bus_down_is_one_alarm(wd):
    broker = Mosquitto(wd).start()
    plc = ModbusSlave(wd, {u: {"holding": [100 + u]} for u in range(1, N + 1)}, name="plc").start()
    other = ModbusSlave(wd, {1: {"holding": [7]}, 2: {"holding": [8]}}, name="other").start()
    sensors = ",\n".join(
        f'{{ id = "t{u}"; kind = "tank"; profile = "p"; modbus = "plc"; unit_id = {u}; '
        f'interval_s = 1; }}' for u in range(1, N + 1))
    cfg = site_config(wd.path, broker.port, f'''
modbus = ( {{ name = "plc"; tcp = "127.0.0.1:{plc.port}"; timeout_ms = 200; fail_threshold = 2; }},
           {{ name = "other"; tcp = "127.0.0.1:{other.port}"; timeout_ms = 200; fail_threshold = 2; }} );
profiles = {{ p = {{ points = ( {{ name = "v"; address = 0; }} ); }}; }};
sensors = ( {sensors},
  {{ id = "o1"; kind = "tank"; profile = "p"; modbus = "other"; unit_id = 1; interval_s = 1; }},
  {{ id = "o2"; kind = "tank"; profile = "p"; modbus = "other"; unit_id = 2; interval_s = 1; }} );
rules = ( {{ name = "sensor offline"; offline_after = 2; class = "trouble"; }} );
contacts = {{ facilities = ( {{ mqtt = "notify/facilities"; }} ); }};
escalation = {{ trouble = ( {{ after_s = 0; notify = [ "facilities" ]; }} ); }};
alarms = {{ flood_min = 3; }};
selftest = {{ enabled = false; }};
''')
    col = Collector(broker.port, f"{PREFIX}/#")
    Gateway(wd, cfg).start()
    for s in [f"t{u}" for u in range(1, N + 1)] + ["o1", "o2"]:
        col.wait_json(f"{PREFIX}/telemetry/{s}", lambda t, o: True, 10, f"{s} telemetry")

    mark = col.mark()
    plc.stop()  # the whole bus goes silent
    bus_key = "bus-plc/bus-offline"
    wait_for(lambda: sum(1 for _, o, _, _ in col.json_since(mark, f"{PREFIX}/events")
                         if o["key"].endswith("/sensor-offline") and o["transition"] == "raise")
             >= N, 20, "every sensor of the bus offline")
    a = json.loads(wait_for(lambda: retained(broker.port, f"{PREFIX}/alarms/{bus_key}").get(
        f"{PREFIX}/alarms/{bus_key}"), 10, "the bus alarm"))
    log(f"bus alarm: {a}")
    assert a["class"] == "trouble" and a["state"] == "unacked", a
    wait_for(lambda: len(json.loads(retained(broker.port, f"{PREFIX}/alarms/{bus_key}")[
        f"{PREFIX}/alarms/{bus_key}"])["explains"]) == N, 10, "the bus alarm lists its sensors")
    notes = [o["key"] for _, o, _, _ in col.json_since(mark, f"{PREFIX}/notify/facilities")
             if o.get("kind") == "raise"]
    log(f"told: {notes}")
    assert bus_key in notes, notes
    assert sum(1 for k in notes if k.endswith("/sensor-offline")) <= 2, \
        f"per-sensor offline alarms were escalated one by one: {notes}"

    # One device silent on the other bus: no flood, told on its own.
    mark2 = col.mark()
    other.command("silent 1")
    col.wait_json(f"{PREFIX}/notify/facilities", lambda t, o: o["key"] == "o1/sensor-offline",
                  15, "o1 told on its own", since=mark2)
    assert f"{PREFIX}/alarms/bus-other/bus-offline" not in retained(broker.port,
                                                                     f"{PREFIX}/alarms/#")


if __name__ == "__main__":
    run([test_bus_down_is_one_alarm])
