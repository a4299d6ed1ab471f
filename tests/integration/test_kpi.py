#!/usr/bin/python3
"""The school's figures end to end (real mosquitto, influxd and a Modbus slave):
one hydrant without pressure raises its supervisory alarm (and auto-opens a
hazard), one sensor never answers (offline); P/kpi about 5 s after start, on
SIGUSR1 before the ack, then on the 10 s grid after a P/cmd/ack sent a known
delay after the raise. Counts are checked exactly, the ack time within
[delay, delay + tolerance] and exactly against the alarm's own timestamps, and
the same figures in InfluxDB's school_kpi."""

import json
import os
import signal
import time
from datetime import datetime, timezone

from harness import (PREFIX, Collector, Gateway, Influxd, ModbusSlave, Mosquitto, log, retained,
                     run, site_config, wait_for)

DB = "campus"
INTERVAL_S = 10
ACK_DELAY_S = 4.0
ACK_TOLERANCE_S = 1.5  # MQTT round trips and the loop, on a loaded test machine
KEY = "h2/hydrant-pressure-low"


def raw(mpa):
    """4-20 mA raw of a hydrant pressure (4000..20000 -> 0..1.6 MPa)."""
    return round(4000 + mpa / 1.6 * 16000)


def ms(rfc3339):
    """RFC 3339 UTC with milliseconds as Unix ms."""
    dt = datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return int(dt.replace(microsecond=0).timestamp()) * 1000 + dt.microsecond // 1000


def now_ms():
    return time.time_ns() // 1000000


def half_up_tenths(millis):
    """Milliseconds as seconds rounded half up to 0.1 (the contract's ack_mean_s)."""
    return ((millis + 50) // 100) / 10


COUNTS = ("sensors_total", "unacknowledged_alarms", "open_hazards", "overdue_hazards",
          "hydrants_without_pressure", "exits_locked_in_hours")


def check_figures(k, unacked, acked_ms):
    """The figures of this school; acked_ms None before the ack."""
    assert (k["district"], k["school"]) == ("testdist", "test-school"), k
    assert isinstance(k["seq"], int), k
    # h1 and h2 answer, h3 (a unit the slave does not serve) never did: 2 of 3 online.
    assert k["sensors_total"] == 3 and k["sensors_online_pct"] == 66.7, k
    assert k["alarms_24h"] == {"alarm": 0, "supervisory": 1, "trouble": 0}, k
    assert k["unacknowledged_alarms"] == unacked, k
    # The auto-opened hazard: open, its 7-day deadline far away.
    assert (k["open_hazards"], k["overdue_hazards"]) == (1, 0), k
    # h2 acknowledged or not, its pressure is still low; there is no exit door.
    assert (k["hydrants_without_pressure"], k["exits_locked_in_hours"]) == (1, 0), k
    if acked_ms is None:
        assert k["ack_mean_s"] is None and k["ack_worst_s"] is None, k
        return
    assert ACK_DELAY_S <= k["ack_worst_s"] <= ACK_DELAY_S + ACK_TOLERANCE_S, k
    # Exactly what the alarm's own record says: worst to the ms, mean half up to 0.1 s.
    assert k["ack_worst_s"] == acked_ms / 1000, (k, acked_ms)
    assert k["ack_mean_s"] == half_up_tenths(acked_ms), (k, acked_ms)


def kpis(col, since=0):
    return [(o, t) for topic, o, _, t in col.json_since(since, f"{PREFIX}/kpi")
            if topic == f"{PREFIX}/kpi" and o]


def test_kpi(wd):
    broker = Mosquitto(wd).start()
    influx = Influxd(wd).start()
    influx.create_database(DB)
    slave = ModbusSlave(wd, {1: {"holding": [raw(0.6)]}, 2: {"holding": [raw(0.05)]}}).start()
    cfg = site_config(os.path.join(wd.path, "state"), broker.port, f'''
modbus = ( {{ name = "bus"; tcp = "127.0.0.1:{slave.port}"; timeout_ms = 300; }} );
profiles = {{
  hydrant = {{ points = ( {{ name = "pressure"; unit = "MPa"; address = 0; type = "u16";
                           raw_min = 4000; raw_max = 20000; min = 0.0; max = 1.6; }} ); }};
}};
sensors = (
  {{ id = "h1"; kind = "hydrant_pressure"; profile = "hydrant"; modbus = "bus"; unit_id = 1;
     interval_s = 1; location = {{ building = "A"; floor = "1"; zone = "east"; }}; }},
  {{ id = "h2"; kind = "hydrant_pressure"; profile = "hydrant"; modbus = "bus"; unit_id = 2;
     interval_s = 1; location = {{ building = "A"; floor = "2"; zone = "west"; }}; }},
  {{ id = "h3"; kind = "hydrant_pressure"; profile = "hydrant"; modbus = "bus"; unit_id = 9;
     interval_s = 1; location = {{ building = "B"; floor = "1"; zone = "gate"; }}; }}
);
rules = (
  {{ name = "hydrant pressure low"; kind = "hydrant_pressure"; point = "pressure"; below = 0.10;
     deadband = 0.02; class = "supervisory"; }}
);
hazards = {{ auto_open = [ "hydrant pressure low" ]; }};
kpi = {{ interval_s = {INTERVAL_S}; }};
influx = {{ url = "{influx.url}"; database = "{DB}"; flush_ms = 100; }};
''')
    col = Collector(broker.port, f"{PREFIX}/#")
    gw = Gateway(wd, cfg).start()
    status = col.wait_json(f"{PREFIX}/status", lambda t, o: o.get("online"), 10, "P/status")
    started = ms(status["started_at"])

    # The alarm (and with it the hazard) before anything is acknowledged.
    raise_ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == KEY
                             and o["transition"] == "raise", 10, "h2's raise")
    raised = ms(raise_ev["raised_at"])
    col.wait_json(f"{PREFIX}/hazards/", lambda t, o: o.get("source_alarm") == KEY, 10,
                  "the hazard auto-opened for h2")
    col.wait_json(f"{PREFIX}/telemetry/h1", lambda t, o: True, 10, "h1 telemetry")

    # SIGUSR1 before the ack: one unacknowledged alarm, no ack time. It publishes P/metrics
    # at once and the figures once their history is read (a page per loop turn, later in
    # the same or the next turns: telemetry may come between), so they are the first P/kpi
    # after that metrics record (a grid point due meanwhile waits for them). The first
    # tick's metrics go first.
    col.wait_json(f"{PREFIX}/metrics", lambda t, o: True, 10, "the first P/metrics")
    mark = col.mark()
    gw.proc.send_signal(signal.SIGUSR1)
    metrics = col.wait_json(f"{PREFIX}/metrics", lambda t, o: True, 5, "P/metrics after SIGUSR1",
                            since=mark)
    after_usr1 = wait_for(lambda: [x for x in kpis(col, mark) if x[0]["seq"] > metrics["seq"]],
                          5, "P/kpi after SIGUSR1")
    usr1, _ = min(after_usr1, key=lambda x: x[0]["seq"])
    assert ms(usr1["ts"]) >= ms(metrics["ts"]), (usr1, metrics)
    check_figures(usr1, unacked=1, acked_ms=None)

    # The ack, ACK_DELAY_S after the raise (by the alarm's own raised_at).
    assert now_ms() < raised + ACK_DELAY_S * 1000, "too slow to acknowledge after the delay"
    wait_for(lambda: now_ms() >= raised + ACK_DELAY_S * 1000, ACK_DELAY_S, "the ack delay",
             interval=0.005)
    mark = col.mark()
    col.publish(f"{PREFIX}/cmd/ack", json.dumps({"key": KEY, "by": "facilities"}))
    res = col.wait_json(f"{PREFIX}/cmd/result", lambda t, o: o.get("key") == KEY, 5, "ack result",
                        since=mark)
    assert res["ok"] is True, res
    ack_ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == KEY
                           and o["transition"] == "ack", 5, "the ack event", since=mark)
    acked = ms(ack_ev["acked_at"])
    assert ms(ack_ev["raised_at"]) == raised, (ack_ev, raise_ev)

    # The first figures of the timer come about 5 s after start, whatever the grid says.
    first, _ = wait_for(lambda: next((x for x in kpis(col) if x[0]["seq"] != usr1["seq"]), None),
                        10, "the first P/kpi of the timer")
    assert 4500 <= ms(first["ts"]) - started <= 7000, (first["ts"], status["started_at"])

    # The next figures show the ack (strictly later: one made in the same ms may precede it).
    after, _ = wait_for(lambda: next((x for x in kpis(col, mark) if ms(x[0]["ts"]) > acked),
                                     None), INTERVAL_S + 5, "P/kpi after the ack")
    check_figures(after, unacked=0, acked_ms=acked - raised)
    log(f"ack after {acked - raised} ms: ack_mean_s={after['ack_mean_s']} "
        f"ack_worst_s={after['ack_worst_s']}")

    # Then on the grid (multiples of 10 s since the epoch), with the same figures.
    def on_grid():
        return [o for o, _ in kpis(col) if o["seq"] not in (first["seq"], usr1["seq"])]
    grid_kpi = wait_for(on_grid, INTERVAL_S + 5, "P/kpi on the grid")[0]
    check_figures(grid_kpi, unacked=0, acked_ms=acked - raised)
    # Every record but the first and SIGUSR1's is on the grid, stamped with the grid point
    # itself (the timer fires a little after it), no more than one per point.
    grid = [ms(o["ts"]) for o in on_grid()]
    for t in grid:
        assert t % (INTERVAL_S * 1000) == 0, f"P/kpi at {t} is off the {INTERVAL_S} s grid"
    slots = [t // (INTERVAL_S * 1000) for t in grid]
    assert len(slots) == len(set(slots)), f"two P/kpi for one grid point: {grid}"

    # Retained: a district dashboard connecting now gets the latest figures at once.
    got = retained(broker.port, f"{PREFIX}/kpi")
    latest = json.loads(got[f"{PREFIX}/kpi"])
    assert latest["seq"] >= grid_kpi["seq"], (latest, grid_kpi)

    # InfluxDB: the same figures, counts as integers, percentages and seconds as floats.
    def point(k):
        t_ns = ms(k["ts"]) * 1000000
        rows = influx.points(f"SELECT * FROM school_kpi WHERE time = {t_ns}", DB)
        return rows[0] if rows else None
    for k in (usr1, after, grid_kpi):
        p = wait_for(lambda: point(k), 10, f"school_kpi point of seq {k['seq']}")
        assert (p["district"], p["school"]) == ("testdist", "test-school"), p
        for name in COUNTS:
            assert p[name] == k[name] and isinstance(p[name], int), (name, p, k)
        for cls, n in k["alarms_24h"].items():
            assert p[f"alarms_24h_{cls}"] == n, (cls, p, k)
        assert p["sensors_online_pct"] == k["sensors_online_pct"], (p, k)
        assert p["ack_mean_s"] == k["ack_mean_s"] and p["ack_worst_s"] == k["ack_worst_s"], (p, k)
    types = {r["fieldKey"]: r["fieldType"]
             for r in influx.points('SHOW FIELD KEYS FROM "school_kpi"', DB)}
    want = {name: "integer" for name in COUNTS}
    want.update({f"alarms_24h_{c}": "integer" for c in ("alarm", "supervisory", "trouble")})
    want.update({"sensors_online_pct": "float", "ack_mean_s": "float", "ack_worst_s": "float"})
    assert types == want, types
    log(f"{len(kpis(col))} P/kpi records, {len(grid)} on the grid")
    col.close()


if __name__ == "__main__":
    run([test_kpi])
