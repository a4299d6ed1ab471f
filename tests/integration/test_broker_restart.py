#!/usr/bin/python3
"""The hub broker goes away and comes back; the gateway starts without a broker;
the gateway is killed and the broker publishes its last will."""

import json
import signal
import time

from harness import (PREFIX, Collector, Gateway, ModbusSlave, Mosquitto, log, retained, run,
                     site_config, telemetry_values, wait_for)


def setup(wd, broker_port):
    slave = ModbusSlave(wd, {1: {"holding": [40, 90]}}).start()
    cfg = site_config(wd.path, broker_port, f'''
modbus = ( {{ name = "bus"; tcp = "127.0.0.1:{slave.port}"; timeout_ms = 300; }} );
profiles = {{ p = {{ points = ( {{ name = "level"; address = 0; }} ); }}; }};
sensors = ( {{ id = "tank-1"; kind = "tank"; profile = "p"; modbus = "bus"; unit_id = 1; interval_s = 1; }} );
rules = ( {{ name = "tank high"; kind = "tank"; point = "level"; above = 80; class = "supervisory"; }} );
''')
    return slave, Gateway(wd, cfg)


def status(port):
    got = retained(port, f"{PREFIX}/status")
    return json.loads(got[f"{PREFIX}/status"]) if got.get(f"{PREFIX}/status") else None


def test_broker_restart(wd):
    broker = Mosquitto(wd).start()
    slave, gw = setup(wd, broker.port)
    col = Collector(broker.port, f"{PREFIX}/#")
    gw.start()
    col.wait_json(f"{PREFIX}/telemetry/tank-1", lambda t, o: o["values"]["level"] == 40, 10,
                  "telemetry before the restart")
    assert status(broker.port)["online"] is True
    col.close()

    log_at = len(gw.output())
    assert broker.stop() == 0
    gw.wait_output("broker unreachable", 10, start=log_at)
    # Keep it down while the gateway keeps polling, and raise an alarm meanwhile.
    slave.set(1, "holding", 0, 95)
    gw.wait_output("WARN alarm: raised key=tank-1/tank-high", 10, start=log_at)
    n = len(slave.reads(1))
    wait_for(lambda: len(slave.reads(1)) >= n + 3, 10, "3 polls with the broker down")
    assert gw.alive(), "gateway died with the broker gone"

    broker2 = Mosquitto(wd, port=broker.port).start()  # persistence off: no retained left
    t_up = time.monotonic()
    col = Collector(broker2.port, f"{PREFIX}/#")
    gw.wait_output("hub broker reachable again", 35, start=log_at)
    log(f"gateway reconnected {time.monotonic() - t_up:.1f} s after the broker came back")
    # Readings taken while the broker was down come first (the outbox keeps them, in order):
    # one may still hold the level from before the change.
    col.wait_json(f"{PREFIX}/telemetry/tank-1", lambda t, o: o["values"]["level"] == 95, 10,
                  "telemetry resumes with the new level")
    st = wait_for(lambda: status(broker2.port), 5, "retained status republished")
    assert st["online"] is True, st
    got = retained(broker2.port, f"{PREFIX}/#")
    h = json.loads(got[f"{PREFIX}/health/tank-1"])
    assert h["online"] is True and h["sensor"] == "tank-1", h
    a = json.loads(got[f"{PREFIX}/alarms/tank-1/tank-high"])
    assert a["state"] == "unacked" and a["value"] == 95, f"alarm raised offline not retained: {a}"
    seqs = [o["seq"] for _, o, _, _ in col.json(f"{PREFIX}/telemetry/tank-1")]
    assert seqs == sorted(seqs), seqs
    assert gw.output().count("INFO gateway: started") == 1, "the gateway restarted"
    col.close()


def test_broker_down_at_start(wd):
    broker = Mosquitto(wd)  # port reserved, not started yet
    port = broker.port
    slave, gw = setup(wd, port)
    gw.start()  # starts without a broker
    gw.wait_output("broker unreachable", 10)
    n = len(slave.reads(1))
    wait_for(lambda: len(slave.reads(1)) >= n + 2, 10, "polls without a broker")
    broker.start()
    col = Collector(broker.port, f"{PREFIX}/#")
    gw.wait_output("broker reachable again", 35)
    col.wait_json(f"{PREFIX}/telemetry/tank-1", lambda t, o: o["values"]["level"] == 40, 10,
                  "telemetry after the late broker")
    st = wait_for(lambda: status(broker.port), 5, "retained status")
    assert st["online"] is True, st
    assert f"{PREFIX}/health/tank-1" in retained(broker.port, f"{PREFIX}/health/#")
    assert gw.alive()


def test_kill9_last_will(wd):
    broker = Mosquitto(wd).start()
    slave, gw = setup(wd, broker.port)
    col = Collector(broker.port, f"{PREFIX}/status")
    gw.start()
    wait_for(lambda: (status(broker.port) or {}).get("online") is True, 10, "status online")
    mark = col.mark()
    gw.proc.send_signal(signal.SIGKILL)
    gw.proc.wait()
    # A status the gateway sent just before it died may still arrive first: wait for the will.
    will = col.wait_json(f"{PREFIX}/status", lambda t, o: o.get("online") is False, 10,
                         "last will", since=mark)
    assert will == {"online": False}, will
    assert status(broker.port) == {"online": False}, "the will is not retained"


if __name__ == "__main__":
    run([test_broker_restart, test_broker_down_at_start, test_kill9_last_will])
