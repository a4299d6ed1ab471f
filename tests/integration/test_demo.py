#!/usr/bin/python3
"""The demo school: campusgw-sim playing config/demo-scenario.cfg (sped up) and the
gateway on config/demo.cfg (ports and state_dir rewritten as scripts/demo does).
The hydrant alarm of A-1F-hydrant-01 must show on P/alarms when the script says."""

import json
import os
import re
import signal
import time

from harness import (free_port, SOURCE_DIR, Collector, Gateway, Mosquitto, Sim, log, retained, run,
                     wait_for)

SPEED = 5          # the low-pressure phase (scenario 40..140 s) lasts 20 s > on_delay + interval
ON_DELAY = 10      # demo.cfg: hydrant pressure low, on_delay_s
INTERVAL = 2       # demo.cfg: interval_s
PREFIX = "campus/haidian/demo-school"
KEY = "A-1F-hydrant-01/hydrant-pressure-low"
LORA_SENSORS = ("A-3F-smoke-301", "B-2F-smoke-205", "A-2F-firedoor-west")


def demo_config(wd, hub_port, sim_port, lora_port):
    text = open(os.path.join(SOURCE_DIR, "config/demo.cfg")).read()
    text, n1 = re.subn(r"(?m)^state_dir = .*$", f'state_dir = "{wd.path}/state";', text)
    text, n2 = re.subn(r"port = 1883;", f"port = {hub_port};", text)
    text, n3 = re.subn(r"127\.0\.0\.1:1502", f"127.0.0.1:{sim_port}", text)
    text, n4 = re.subn(r"127\.0\.0\.1:1700", f"127.0.0.1:{lora_port}", text)
    text, n5 = re.subn(r"127\.0\.0\.1:8080", f"127.0.0.1:{free_port()}", text)
    assert (n1, n2, n3, n4, n5) == (1, 1, 1, 1, 1), \
        "demo.cfg no longer has the lines scripts/demo rewrites"
    return text


def hydrant_events():
    """[(at_s, pressure)] of A-1F-hydrant-01 in demo-scenario.cfg's script."""
    text = open(os.path.join(SOURCE_DIR, "config/demo-scenario.cfg")).read()
    got = [(int(a), float(p)) for a, p in re.findall(
        r'at_s = (\d+);\s*device = "A-1F-hydrant-01"; pressure = ([0-9.]+);', text)]
    assert got, "demo-scenario.cfg: no A-1F-hydrant-01 pressure events"
    return got


def test_demo_hydrant_alarm(wd):
    script = hydrant_events()
    low_at = next(a for a, p in script if p < 0.10)
    up_at = next(a for a, p in script if a > low_at and p > 0.12)
    assert (up_at - low_at) / SPEED > ON_DELAY + INTERVAL + 3, "the scenario changed: adjust SPEED"
    broker = Mosquitto(wd).start()
    col = Collector(broker.port, f"{PREFIX}/#")
    scenario = open(os.path.join(SOURCE_DIR, "config/demo-scenario.cfg")).read()
    # Its LoRa forwarders send to a free loopback port of ours, not the default 1700.
    lora_port = free_port()
    sim = Sim(wd, scenario, extra=["--speed", str(SPEED), "--lora-forward",
                                   f"127.0.0.1:{lora_port}"]).start()
    t0 = time.monotonic()  # ~ scenario time 0 (the sim's listening line)
    gw = Gateway(wd, demo_config(wd, broker.port, sim.port, lora_port)).start()
    for s in ("A-1F-hydrant-01", "A-2F-hydrant-02", "B-1F-hydrant-03", "A-1F-exit-east",
              "B-1F-exit-main"):
        col.wait_json(f"{PREFIX}/telemetry/{s}", lambda t, o: True, 10, f"{s} telemetry")
    # LoRa devices report every 60 s of scenario time, heard by both simulated forwarders.
    for s in LORA_SENSORS:
        o = col.wait_json(f"{PREFIX}/telemetry/{s}", lambda t, o: True, 60 / SPEED + 5,
                          f"{s} LoRa telemetry")
        assert o["forwarders"] == 2 and "battery" in o["values"] and o["rssi"] < 0, o
    first = col.json(f"{PREFIX}/telemetry/A-1F-hydrant-01")[0][1]
    assert abs(first["values"]["pressure"] - 0.45) <= 0.006, first

    # The script: 0.20 at 30 s, 0.02 at 40 s (scenario time).
    sim.wait_output(f"t={low_at}s hydrant A-1F-hydrant-01", low_at / SPEED + 5)
    t_low = time.monotonic()
    deadline = low_at / SPEED + INTERVAL + ON_DELAY + 3  # from scenario time 0
    ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == KEY,
                       deadline - (time.monotonic() - t0), "the hydrant alarm on P/events")
    t_raise = time.monotonic()
    log(f"hydrant alarm {t_raise - t_low:.1f} s after the drop "
        f"({t_raise - t0:.1f} s after start; deadline {deadline:.1f} s)")
    assert t_raise - t_low >= ON_DELAY - 0.5, "raised before on_delay"
    assert ev["transition"] == "raise" and ev["class"] == "supervisory", ev
    assert abs(ev["value"] - 0.02) <= 0.006, ev
    topic = f"{PREFIX}/alarms/{KEY}"
    a = json.loads(wait_for(lambda: retained(broker.port, topic).get(topic), 5, "retained alarm"))
    assert a["state"] == "unacked" and a["sensor"] == "A-1F-hydrant-01", a
    assert a["rule"] == "hydrant pressure low", a

    # Meanwhile the exit of building B is locked (50 s) and hydrant-03 goes silent (70..120 s).
    col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] ==
                  "B-1F-exit-main/exit-locked-during-school-hours" and o["transition"] == "raise",
                  15, "the locked exit alarm")
    col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == "B-1F-hydrant-03/sensor-offline"
                  and o["transition"] == "raise", 15, "hydrant-03 offline alarm")

    # The valve is reopened at 140 s: the alarm clears.
    left = up_at / SPEED + INTERVAL + 3 - (time.monotonic() - t0)
    col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == KEY and o["transition"] == "clear",
                  left, "the hydrant alarm clears")
    # Nobody acknowledged it: it stays, returned to normal but unacknowledged, until someone does.
    a = json.loads(wait_for(lambda: retained(broker.port, topic).get(topic), 5, "rtn_unacked"))
    assert a["state"] == "rtn_unacked" and a["cleared_at"], a
    mark = col.mark()
    col.publish(f"{PREFIX}/cmd/ack", json.dumps({"key": KEY, "by": "facilities", "id": "d1"}))
    r = col.wait_json(f"{PREFIX}/cmd/result", lambda t, o: o.get("id") == "d1", 5, "ack result",
                      since=mark)
    assert r["ok"] is True and r["state"] == "normal", r
    wait_for(lambda: topic not in retained(broker.port, f"{PREFIX}/alarms/#"), 5,
             "retained hydrant alarm removed")
    # Smoke in room 301 at 90 s: a fire alarm from an encrypted, signed LoRaWAN frame.
    col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == "A-3F-smoke-301/smoke-detected"
                  and o["transition"] == "raise" and o["class"] == "alarm", 5, "the smoke alarm")
    # The captured frame played back at 110 s is refused and counted.
    sim.wait_output("fault -> replay", 10)

    def metrics_with_replay():
        mark = col.mark()
        gw.proc.send_signal(signal.SIGUSR1)  # P/metrics now
        m = col.wait_json(f"{PREFIX}/metrics", lambda t, o: True, 5, "metrics", since=mark)
        return m if m["lora_rejected_replay"] >= 1 else None

    m = wait_for(metrics_with_replay, 10, "the replayed frame counted", interval=0.5)
    assert m["lora_rejected_bad_mic"] == 0, m
    assert m["lora_readings"] >= len(LORA_SENSORS) and m["lora_duplicates"] >= 1, m
    others = {o["key"] for _, o, _, _ in col.json(f"{PREFIX}/events")}
    assert not any(k.startswith(("A-2F-hydrant-02/", "A-1F-exit-east/")) for k in others), others
    assert gw.alive() and sim.alive()


if __name__ == "__main__":
    run([test_demo_hydrant_alarm])
