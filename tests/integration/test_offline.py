#!/usr/bin/python3
"""A device that stops answering: offline health, the offline_after trouble alarm,
recovery, and the other sensor on the same bus keeping its interval."""

import json
from datetime import datetime

from harness import (PREFIX, Collector, Gateway, ModbusSlave, Mosquitto, log, retained, run,
                     site_config, telemetry_values, wait_for)

TIMEOUT_MS = 300
INTERVAL = 1


def ts(o):
    return datetime.strptime(o["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def health(broker, sensor):
    topic = f"{PREFIX}/health/{sensor}"
    got = retained(broker.port, topic)
    return json.loads(got[topic]) if got.get(topic) else None


def test_silent_device(wd):
    broker = Mosquitto(wd).start()
    slave = ModbusSlave(wd, {1: {"holding": [111]}, 2: {"holding": [222]}}).start()
    cfg = site_config(wd.path, broker.port, f'''
modbus = ( {{ name = "bus"; tcp = "127.0.0.1:{slave.port}"; timeout_ms = {TIMEOUT_MS};
              fail_threshold = 3; }} );
profiles = {{ counter = {{ points = ( {{ name = "v"; address = 0; }} ); }}; }};
sensors = (
  {{ id = "dies"; kind = "meter"; profile = "counter"; modbus = "bus"; unit_id = 1; interval_s = {INTERVAL}; }},
  {{ id = "lives"; kind = "meter"; profile = "counter"; modbus = "bus"; unit_id = 2; interval_s = {INTERVAL}; }}
);
rules = ( {{ name = "sensor offline"; offline_after = 3; class = "trouble"; }} );
''')
    col = Collector(broker.port, f"{PREFIX}/#")
    gw = Gateway(wd, cfg).start()
    for s, v in (("dies", 111), ("lives", 222)):
        col.wait_json(f"{PREFIX}/telemetry/{s}", lambda t, o, v=v: o["values"]["v"] == v, 10,
                      f"{s} = {v}")
    h = wait_for(lambda: health(broker, "dies"), 5, "retained health of dies")
    assert h["online"] is True and "fault" not in h, h

    key = "dies/sensor-offline"
    mark = col.mark()
    n_lives = len(telemetry_values(col, PREFIX, "lives"))
    slave.command("silent 1")
    h = col.wait_json(f"{PREFIX}/health/dies", lambda t, o: o["online"] is False, 10,
                      "dies offline on P/health", since=mark)
    assert h["fault"] == f"timeout after {TIMEOUT_MS} ms", h
    assert h["last_seen"], h
    ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == key, 10,
                       "offline alarm raise", since=mark)
    assert ev["transition"] == "raise" and ev["class"] == "trouble", ev
    topic = f"{PREFIX}/alarms/{key}"
    a = json.loads(retained(broker.port, topic)[topic])
    assert a["state"] == "unacked" and a["class"] == "trouble", a
    assert "sensor dies unit=1 bus=bus offline after 3 failed polls" in gw.output()
    # Let the dead device back off a bit while lives keeps polling.
    wait_for(lambda: len(telemetry_values(col, PREFIX, "lives")) >= n_lives + 8, 15,
             "8 polls of lives while dies is dead")

    mark2 = col.mark()
    slave.set(1, "holding", 0, 333)
    slave.command("answer 1")
    # The dead device is polled with backoff (1, 2, 4, 8 s): it comes back within ~16 s.
    col.wait_json(f"{PREFIX}/telemetry/dies", lambda t, o: o["values"]["v"] == 333, 20,
                  "dies back with 333", since=mark2)
    h = col.wait_json(f"{PREFIX}/health/dies", lambda t, o: o["online"] is True, 5,
                      "dies online again", since=mark2)
    assert "fault" not in h, h
    ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == key, 5,
                       "offline alarm clear", since=mark2)
    assert ev["transition"] == "clear" and ev["state"] == "rtn_unacked", ev
    # Back, but nobody acknowledged the outage yet: it stays until someone does.
    col.publish(f"{PREFIX}/cmd/ack", json.dumps({"key": key, "by": "facilities"}))
    wait_for(lambda: topic not in retained(broker.port, f"{PREFIX}/alarms/#"), 5,
             "retained offline alarm gone")
    assert "sensor dies unit=1 bus=bus recovered" in gw.output()

    # The healthy sensor: polled every interval throughout, never delayed by more than
    # the dead device's timeout, and never alarmed.
    lives = [o for o in telemetry_values(col, PREFIX, "lives")[n_lives:]]
    stamps = [ts(o) for o in lives]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    log(f"lives: {len(lives)} polls while dies was dead/recovering, max gap {max(gaps):.3f} s")
    assert all(o["values"]["v"] == 222 for o in lives)
    limit = INTERVAL + TIMEOUT_MS / 1000 + 0.25
    assert max(gaps) <= limit, f"lives gap {max(gaps):.3f} s > {limit} s: {gaps}"
    events_lives = [o for _, o, _, _ in col.json(f"{PREFIX}/events") if o["sensor"] == "lives"]
    assert events_lives == [], events_lives
    assert health(broker, "lives")["online"] is True
    # The offline warning is logged once, not per poll.
    assert gw.output().count("sensor dies unit=1 bus=bus offline after") == 1, gw.output()
    assert gw.alive()


if __name__ == "__main__":
    run([test_silent_device])
