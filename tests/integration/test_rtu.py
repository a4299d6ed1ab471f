#!/usr/bin/python3
"""Modbus RTU over a socat pty pair: a pymodbus serial slave on one end, the gateway's
bus on the other. Values arrive; a unit id nobody answers goes offline while the
real one keeps publishing."""

import json
import math
from datetime import datetime

from harness import (PREFIX, Collector, Gateway, ModbusSlave, Mosquitto, SerialPair, log,
                     retained, run, site_config, telemetry_values, wait_for, words_f32)


def ts(o):
    return datetime.strptime(o["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def test_rtu_values_and_missing_unit(wd):
    broker = Mosquitto(wd).start()
    pty = SerialPair(wd).start()
    slave = ModbusSlave(wd, {7: {"holding": [0x10000 - 1500] + words_f32(-12.25),
                                 "input": [4321]}},
                        rtu=pty.slave, baud=9600).start()
    cfg = site_config(wd.path, broker.port, f'''
modbus = ( {{ name = "rs485"; rtu = "{pty.gw}"; baud = 9600; timeout_ms = 400; fail_threshold = 2; }} );
profiles = {{ meter = {{ points = (
    {{ name = "temp"; address = 0; type = "s16"; scale = 0.1; }},
    {{ name = "flow"; address = 1; type = "f32"; }},
    {{ name = "count"; table = "input"; address = 0; }} ); }}; }};
sensors = (
  {{ id = "m-7"; kind = "meter"; profile = "meter"; modbus = "rs485"; unit_id = 7; interval_s = 1; }},
  {{ id = "m-9"; kind = "meter"; profile = "meter"; modbus = "rs485"; unit_id = 9; interval_s = 1; }}
);
rules = ( {{ name = "offline"; offline_after = 2; class = "trouble"; }} );
''')
    col = Collector(broker.port, f"{PREFIX}/#")
    gw = Gateway(wd, cfg).start()
    msg = col.wait_json(f"{PREFIX}/telemetry/m-7", lambda t, o: True, 10, "m-7 telemetry")
    v = msg["values"]
    assert math.isclose(v["temp"], -150.0, abs_tol=1e-9), v
    assert v["flow"] == -12.25 and v["count"] == 4321, v

    slave.set(7, "input", 0, 65535)
    col.wait_json(f"{PREFIX}/telemetry/m-7", lambda t, o: o["values"]["count"] == 65535, 5,
                  "count 65535 over RTU")

    # Unit 9 does not exist: it never answers and goes offline with a timeout.
    h = col.wait_json(f"{PREFIX}/health/m-9", lambda t, o: o["online"] is False, 10,
                      "m-9 offline")
    assert h["fault"] == "timeout after 400 ms", h
    ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == "m-9/offline", 10,
                       "m-9 offline alarm")
    assert ev["transition"] == "raise" and ev["class"] == "trouble", ev
    assert telemetry_values(col, PREFIX, "m-9") == []

    # Meanwhile m-7 keeps publishing at its interval (the dead unit costs one timeout).
    n = len(telemetry_values(col, PREFIX, "m-7"))
    wait_for(lambda: len(telemetry_values(col, PREFIX, "m-7")) >= n + 5, 10, "5 more m-7 polls")
    m7 = telemetry_values(col, PREFIX, "m-7")
    gaps = [b - a for a, b in zip(map(ts, m7), map(ts, m7[1:]))]
    log(f"m-7: {len(m7)} polls, max gap {max(gaps):.3f} s")
    assert max(gaps) <= 1 + 0.4 + 0.3, gaps
    topic = f"{PREFIX}/health/m-7"
    assert json.loads(retained(broker.port, topic)[topic])["online"] is True
    assert not any(e["key"].startswith("m-7/") for _, e, _, _ in col.json(f"{PREFIX}/events"))
    assert "bus rs485" in gw.output() and gw.alive()


if __name__ == "__main__":
    run([test_rtu_values_and_missing_unit])
