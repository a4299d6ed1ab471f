#!/usr/bin/python3
"""Modbus value decoding end to end: a pymodbus slave with known registers, the
gateway, and the exact scaled numbers on P/telemetry/<sensor>."""

import json
import math

from harness import (PREFIX, Collector, Gateway, ModbusSlave, Mosquitto, log, retained, run,
                     site_config, telemetry_values, wait_for, words_f32, words_u32)

PROFILES = '''
profiles = {
  mixed = { points = (
    { name = "u16s";     address = 0;  type = "u16"; scale = 0.1; offset = -5.0; },
    { name = "s16neg";   address = 1;  type = "s16"; scale = 0.01; },
    { name = "u32big";   address = 2;  type = "u32"; },
    { name = "u32little"; address = 4; type = "u32"; word_order = "little"; },
    { name = "s32big";   address = 6;  type = "s32"; },
    { name = "s32little"; address = 8; type = "s32"; word_order = "little"; },
    { name = "f32big";   address = 10; type = "f32"; },
    { name = "f32little"; address = 12; type = "f32"; word_order = "little"; },
    { name = "coil_on";  table = "coil"; address = 3; },
    { name = "coil_off"; table = "coil"; address = 4; },
    { name = "disc_on";  table = "discrete"; address = 5; type = "bool"; },
    { name = "inreg";    table = "input"; address = 7; type = "u16"; scale = 2; },
    { name = "hreg_bool"; address = 14; type = "bool"; }
  ); };
  hydrant = { points = (
    { name = "pressure"; unit = "MPa"; table = "holding"; address = 0; type = "u16";
      raw_min = 4000; raw_max = 20000; min = 0.0; max = 1.6; }
  ); };
};
'''

HOLDING = ([1234, 0x10000 - 200] + words_u32(100000, "big") + words_u32(3000000000, "little")
           + words_u32(-123456, "big") + words_u32(-2, "little") + words_f32(21.5, "big")
           + words_f32(-0.375, "little") + [7])

EXPECTED = {
    "u16s": 1234 * 0.1 - 5.0,
    "s16neg": -2.0,
    "u32big": 100000,
    "u32little": 3000000000,
    "s32big": -123456,
    "s32little": -2,
    "f32big": 21.5,
    "f32little": -0.375,
    "coil_on": True,
    "coil_off": False,
    "disc_on": True,
    "inreg": 600,
    "hreg_bool": True,
}


def same(a, b):
    if isinstance(b, bool) or isinstance(a, bool):
        return a is b
    return isinstance(a, (int, float)) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def setup(wd):
    broker = Mosquitto(wd).start()
    slave = ModbusSlave(wd, {
        1: {"holding": HOLDING, "coils": {"3": 1, "4": 0}, "discrete": {"5": 1}, "input": {"7": 300}},
        2: {"holding": [12000]},
    }).start()
    cfg = site_config(wd.path, broker.port, f'''
modbus = ( {{ name = "bus"; tcp = "127.0.0.1:{slave.port}"; timeout_ms = 300; }} );
{PROFILES}
sensors = (
  {{ id = "mix-1"; kind = "meter"; profile = "mixed"; modbus = "bus"; unit_id = 1; interval_s = 1; }},
  {{ id = "hyd-1"; kind = "hydrant_pressure"; profile = "hydrant"; modbus = "bus"; unit_id = 2;
     interval_s = 1; }}
);
''')
    col = Collector(broker.port, f"{PREFIX}/#")
    gw = Gateway(wd, cfg).start()
    return broker, slave, col, gw


def test_values_scaled_exactly(wd):
    broker, slave, col, gw = setup(wd)
    msg = col.wait_json(f"{PREFIX}/telemetry/mix-1", lambda t, o: True, 10, "mix-1 telemetry")
    assert msg["sensor"] == "mix-1" and msg["kind"] == "meter", msg
    assert "faults" not in msg, msg
    got = msg["values"]
    assert set(got) == set(EXPECTED), f"points {sorted(got)} != {sorted(EXPECTED)}"
    bad = {k: (got[k], v) for k, v in EXPECTED.items() if not same(got[k], v)}
    assert not bad, f"wrong values (got, expected): {bad}"

    # A change on the slave shows up with the new value: the gateway really reads.
    slave.set(1, "holding", 1, 0x10000 - 32768)  # s16 minimum
    col.wait_json(f"{PREFIX}/telemetry/mix-1",
                  lambda t, o: same(o["values"].get("s16neg"), -327.68), 5, "s16 -32768 * 0.01")
    slave.set(1, "coils", 3, 0)
    col.wait_json(f"{PREFIX}/telemetry/mix-1",
                  lambda t, o: o["values"].get("coil_on") is False, 5, "coil 3 cleared")

    # Several points of one device in few requests: 13 points in 4 tables -> one read per
    # table per poll (holding 0..14 in one request).
    mark = len(slave.reads(1))
    n0 = len(telemetry_values(col, PREFIX, "mix-1"))
    wait_for(lambda: len(telemetry_values(col, PREFIX, "mix-1")) >= n0 + 3, 8, "3 more polls")
    reads = slave.reads(1)[mark:]
    log(f"mix-1: {len(reads)} requests over 3+ polls, distinct: {sorted(set(map(tuple, reads)))}")
    assert sorted(set(map(tuple, reads))) == [(1, 3, 2), (2, 5, 1), (3, 0, 15), (4, 7, 1)], reads
    polls = len(telemetry_values(col, PREFIX, "mix-1")) - n0
    assert len(reads) <= 4 * (polls + 1), f"{len(reads)} requests for {polls} polls"
    assert gw.alive()


def test_span_and_wire_break(wd):
    broker, slave, col, gw = setup(wd)
    msg = col.wait_json(f"{PREFIX}/telemetry/hyd-1", lambda t, o: True, 10, "hyd-1 telemetry")
    assert same(msg["values"].get("pressure"), 0.8), msg
    for raw, mpa in ((4000, 0.0), (20000, 1.6), (6000, 0.2)):
        slave.set(2, "holding", 0, raw)
        col.wait_json(f"{PREFIX}/telemetry/hyd-1",
                      lambda t, o, mpa=mpa: same(o["values"].get("pressure"), mpa), 5,
                      f"pressure {mpa} for raw {raw}")

    mark = col.mark()
    slave.set(2, "holding", 0, 0)  # 0 mA: open loop
    f = col.wait_json(f"{PREFIX}/telemetry/hyd-1", lambda t, o: "faults" in o, 5,
                      "a telemetry message with faults", since=mark)
    assert f["faults"] == {"pressure": "wire_break"}, f
    assert "pressure" not in f["values"], f"a faulted point has no value: {f}"

    def health_fault():
        h = retained(broker.port, f"{PREFIX}/health/hyd-1").get(f"{PREFIX}/health/hyd-1")
        return h and json.loads(h)

    h = wait_for(lambda: (lambda x: x if x and x.get("fault") else None)(health_fault()), 5,
                 "retained health with a fault")
    assert h["online"] is True, f"a wire break is a point fault, the device answers: {h}"
    assert "wire_break" in h["fault"] and "pressure" in h["fault"], h

    # Back in range: value again, fault gone from health.
    slave.set(2, "holding", 0, 12000)
    col.wait_json(f"{PREFIX}/telemetry/hyd-1",
                  lambda t, o: same(o["values"].get("pressure"), 0.8) and "faults" not in o, 5,
                  "pressure back to 0.8")
    wait_for(lambda: (lambda x: x and "fault" not in x)(health_fault()), 5, "health without fault")
    assert gw.alive()


if __name__ == "__main__":
    run([test_values_scaled_exactly, test_span_and_wire_break])
