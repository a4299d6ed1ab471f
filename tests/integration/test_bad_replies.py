#!/usr/bin/python3
"""campusgw-sim devices scripted to answer with a Modbus exception and with garbage:
the gateway survives, logs each fault once, keeps polling the healthy device, and
picks the broken ones up again once they behave."""

import math
from datetime import datetime

from harness import (PREFIX, Collector, Gateway, Mosquitto, Sim, log, run, site_config,
                     telemetry_values, wait_for)

FAULT_AT = 5
FAULT_END = 12

SCENARIO = f'''
name = "bad replies";
devices = (
  {{ name = "ok";   unit_id = 1; type = "hydrant_4_20"; pressure = 0.45; noise = 0.0; }},
  {{ name = "exc";  unit_id = 2; type = "hydrant_4_20"; pressure = 0.30; noise = 0.0; }},
  {{ name = "garb"; unit_id = 3; type = "hydrant_4_20"; pressure = 0.60; noise = 0.0; }}
);
script = (
  {{ at_s = {FAULT_AT}; device = "exc"; fault = "exception"; }},
  {{ at_s = {FAULT_AT}; device = "garb"; fault = "garbage"; }},
  {{ at_s = {FAULT_END}; device = "exc"; fault = "none"; pressure = 0.32; }},
  {{ at_s = {FAULT_END}; device = "garb"; fault = "none"; pressure = 0.62; }}
);
'''


def ts(o):
    return datetime.strptime(o["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def test_exception_and_garbage(wd):
    broker = Mosquitto(wd).start()
    sim = Sim(wd, SCENARIO, extra=["-v"]).start()
    cfg = site_config(wd.path, broker.port, f'''
modbus = ( {{ name = "sim"; tcp = "127.0.0.1:{sim.port}"; timeout_ms = 300; }} );
profiles = {{ hydrant = {{ points = ( {{ name = "pressure"; address = 0; type = "u16";
                          raw_min = 4000; raw_max = 20000; min = 0.0; max = 1.6; }} ); }}; }};
sensors = (
  {{ id = "hyd-ok"; kind = "h"; profile = "hydrant"; modbus = "sim"; unit_id = 1; interval_s = 1; }},
  {{ id = "hyd-exc"; kind = "h"; profile = "hydrant"; modbus = "sim"; unit_id = 2; interval_s = 1; }},
  {{ id = "hyd-garb"; kind = "h"; profile = "hydrant"; modbus = "sim"; unit_id = 3; interval_s = 1; }}
);
''')
    col = Collector(broker.port, f"{PREFIX}/#")
    gw = Gateway(wd, cfg).start()
    for s, p in (("hyd-ok", 0.45), ("hyd-exc", 0.30), ("hyd-garb", 0.60)):
        col.wait_json(f"{PREFIX}/telemetry/{s}",
                      lambda t, o, p=p: math.isclose(o["values"]["pressure"], p, abs_tol=1e-9),
                      FAULT_AT, f"{s} = {p} before the faults")

    # Both go offline (3 failed polls) with the error as the fault.
    h = col.wait_json(f"{PREFIX}/health/hyd-exc", lambda t, o: not o["online"], FAULT_AT + 10,
                      "hyd-exc offline")
    assert h["fault"].startswith("exception: Illegal data address"), h
    h = col.wait_json(f"{PREFIX}/health/hyd-garb", lambda t, o: not o["online"], 10,
                      "hyd-garb offline")
    assert h["fault"].startswith("bad reply"), h
    assert gw.alive(), "gateway died on a bad reply"

    # Recovery after the script removes the faults (backoff: up to ~8 s more).
    for s, p in (("hyd-exc", 0.32), ("hyd-garb", 0.62)):
        col.wait_json(f"{PREFIX}/telemetry/{s}",
                      lambda t, o, p=p: math.isclose(o["values"]["pressure"], p, abs_tol=1e-9),
                      FAULT_END + 20, f"{s} back with {p}")
        col.wait_json(f"{PREFIX}/health/{s}", lambda t, o: o["online"] and "fault" not in o, 5,
                      f"{s} online again")

    out = gw.output()
    simout = sim.output()
    n_exc = simout.count("unit=2 fc=3 addr=0 n=1 exc -> exception")
    n_garb = simout.count("unit=3 fc=3 addr=0 n=1 garb -> garbage")
    log(f"sim answered {n_exc} exceptions and {n_garb} garbage replies")
    assert n_exc >= 3 and n_garb >= 3, (n_exc, n_garb)
    # Logged once each, not once per poll.
    assert out.count("sensor hyd-exc unit=2 exception") == 1, out
    assert out.count("sensor hyd-garb unit=3 bus=sim error") == 1, out
    assert out.count("sensor hyd-exc unit=2 bus=sim offline after") == 1, out
    assert out.count("sensor hyd-garb unit=3 bus=sim offline after") == 1, out
    assert "sensor hyd-exc unit=2 bus=sim recovered" in out
    assert "sensor hyd-garb unit=3 bus=sim recovered" in out
    assert "hyd-ok" not in out, "the healthy sensor was never complained about"

    # The healthy device kept its interval all along.
    ok = telemetry_values(col, PREFIX, "hyd-ok")
    assert all(math.isclose(o["values"]["pressure"], 0.45, abs_tol=1e-9) for o in ok)
    gaps = [b - a for a, b in zip(map(ts, ok), map(ts, ok[1:]))]
    log(f"hyd-ok: {len(ok)} polls, max gap {max(gaps):.3f} s")
    assert max(gaps) <= 1.6, gaps
    assert gw.alive()
    assert gw.stop() == 0
    assert "ERROR" not in gw.output() and "runtime error" not in gw.output()


if __name__ == "__main__":
    run([test_exception_and_garbage])
