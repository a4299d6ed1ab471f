#!/usr/bin/python3
"""The InfluxDB sink against a real influxd 1.x: line protocol round trip with
escaping, an outage under load (every point exactly once), a batch with one
refused line (dead letters), and refused credentials fixed by a reload."""

import os
import signal
import struct
import time
from datetime import datetime, timezone

from harness import (PREFIX, Collector, Gateway, Influxd, ModbusSlave, Mosquitto, log, run,
                     sim_hydrants, site_config, state_db_rows, wait_for, words_f32, words_u32)

DB = "campus"


def influx_section(influx, extra="", gzip=True):
    return (f'influx = {{ url = "{influx.url}"; database = "{DB}"; batch_size = 500; '
            f'flush_ms = 100; gzip = {"true" if gzip else "false"}; {extra} }};\n')


def ts_ns(rfc3339):
    """RFC 3339 with milliseconds ("2025-01-02T03:04:05.678Z") as Unix nanoseconds."""
    dt = datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return (int(dt.replace(microsecond=0).timestamp()) * 1000 + dt.microsecond // 1000) * 1000000


def first_by_seq(msgs):
    """Messages (topic, obj, ...) de-duplicated by seq, first arrival kept."""
    seen, out = set(), []
    for m in msgs:
        obj = m[1]
        if obj and "seq" in obj and obj["seq"] not in seen:
            seen.add(obj["seq"])
            out.append(m)
    return out


def telemetry_by_sensor(col, sensors):
    """{sensor: {ts_ns: values}} of the telemetry the hub saw, de-duplicated by seq."""
    out = {s: {} for s in sensors}
    for topic, obj, _, _ in first_by_seq(col.json(f"{PREFIX}/telemetry/")):
        if obj["sensor"] in out:
            out[obj["sensor"]][ts_ns(obj["ts"])] = obj["values"]
    return out


def series_points(influx, measurement, sensor, fields="*"):
    rows = influx.points(f"SELECT {fields} FROM \"{measurement}\" WHERE sensor = '{sensor}'", DB)
    return rows


def f32(x):
    return struct.unpack(">f", struct.pack(">f", x))[0]


# ---- a. round trip of awkward tag and field values ----

BUILDING = "教学楼 A,栋=1"
FLOOR = "3 层 (top)"
# quotes, backslashes before a comma, a space, an equals sign and in the middle
ZONE = 'east "stair" \\ back\\,slash\\=x\\ y'
LABELS = ["closed", 'open "wide"', "lock\\ed, a=b c 锁"]
RULE = 'temp low, x=1 "q" 温度'

ROUND_TRIP_CFG = '''
modbus = ( {{ name = "bus"; tcp = "127.0.0.1:{port}"; timeout_ms = 500; }} );
profiles = {{ odd = {{ points = (
    {{ name = "state"; address = 0; enum = [ {labels} ]; }},
    {{ name = "locked"; table = "coil"; address = 0; }},
    {{ name = "temp"; address = 1; type = "s16"; scale = 0.01; }},
    {{ name = "big"; address = 2; type = "u32"; }},
    {{ name = "neg32"; address = 4; type = "s32"; }},
    {{ name = "f"; address = 6; type = "f32"; }},
    {{ name = "tiny"; address = 8; type = "f32"; }},
    {{ name = "huge"; address = 10; type = "u32"; scale = 1000000; }},
    {{ name = "zero.neg"; address = 12; type = "s16"; scale = 0.5; offset = -0.25; }} ); }}; }};
sensors = ( {{ id = "odd_1.x-Y"; kind = "odd_kind-1"; profile = "odd"; modbus = "bus"; unit_id = 1;
              interval_s = 1;
              location = {{ building = {building}; floor = {floor}; zone = {zone}; }}; }},
            {{ id = "odd-2"; kind = "odd_kind-1"; profile = "odd"; modbus = "bus"; unit_id = 1;
              interval_s = 1; location = {{ building = "two\\nlines"; zone = "ends in \\\\"; }}; }} );
rules = ( {{ name = {rule}; kind = "odd_kind-1"; point = "temp"; below = 0.0; class = "supervisory"; }} );
'''


def cfg_str(s):
    """A libconfig string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_round_trip(wd):
    broker = Mosquitto(wd).start()
    influx = Influxd(wd).start()
    influx.create_database(DB)
    regs = ([2, 0x10000 - 1234] + words_u32(4294967295) + words_u32(-2147483648)
            + words_f32(-1.5e30) + words_f32(1.0e-7) + words_u32(4294967295) + [0x10000 - 3])
    slave = ModbusSlave(wd, {1: {"holding": regs, "coils": [1]}}).start()
    body = ROUND_TRIP_CFG.format(port=slave.port, labels=", ".join(cfg_str(x) for x in LABELS),
                                 building=cfg_str(BUILDING), floor=cfg_str(FLOOR),
                                 zone=cfg_str(ZONE), rule=cfg_str(RULE))
    gw = Gateway(wd, site_config(os.path.join(wd.path, "state"), broker.port,
                                 body + influx_section(influx)))
    col = Collector(broker.port, f"{PREFIX}/#")
    gw.start()
    sensor = "odd_1.x-Y"
    col.wait_json(f"{PREFIX}/telemetry/{sensor}", lambda t, o: True, 10, "telemetry")
    col.wait_json(f"{PREFIX}/events", lambda t, o: o["sensor"] == sensor, 10, "alarm raise")
    col.wait_json(f"{PREFIX}/metrics", lambda t, o: True, 10, "gateway metrics")

    expected = {"state": LABELS[2], "locked": True, "temp": -12.34, "big": 4294967295,
                "neg32": -2147483648, "f": float(f"{f32(-1.5e30):.12g}"),
                "tiny": float(f"{f32(1.0e-7):.12g}"), "huge": 4294967295e6,
                "zero.neg": -1.75}
    tele = [o for _, o, _, _ in col.json(f"{PREFIX}/telemetry/{sensor}")]
    assert tele[0]["values"] == expected, tele[0]["values"]

    # Telemetry: every point the hub saw is in InfluxDB with the same values and tags.
    def all_in():
        rows = series_points(influx, "odd_kind-1", sensor)
        have = {r["time"] for r in rows}
        want = {ts_ns(o["ts"]) for o in tele}
        return rows if want <= have else None
    rows = wait_for(all_in, 15, "telemetry points in influxd")
    by_time = {r["time"]: r for r in rows}
    for o in tele:
        r = by_time[ts_ns(o["ts"])]
        for k, v in o["values"].items():
            assert r[k] == v and isinstance(r[k], bool) == isinstance(v, bool), \
                f"field {k}: influx {r[k]!r} != hub {v!r}"
        tags = {k: r[k] for k in ("building", "floor", "zone", "sensor", "district", "school")}
        assert tags == {"building": BUILDING, "floor": FLOOR, "zone": ZONE, "sensor": sensor,
                        "district": "testdist", "school": "test-school"}, tags
    types = {row["fieldKey"]: row["fieldType"]
             for row in influx.points('SHOW FIELD KEYS FROM "odd_kind-1"', DB)}
    assert types == {"state": "string", "locked": "boolean", "temp": "float", "big": "float",
                     "neg32": "float", "f": "float", "tiny": "float", "huge": "float",
                     "zero.neg": "float"}, types

    # sensor_health: the location tags, online true
    h = wait_for(lambda: series_points(influx, "sensor_health", sensor), 10, "sensor_health")
    assert h[0]["online"] is True and h[0]["errors"] == 0, h[0]
    assert (h[0]["building"], h[0]["floor"], h[0]["zone"]) == (BUILDING, FLOOR, ZONE), h[0]

    # alarm: the rule name (commas, equals, quotes, Chinese) as a tag, state/level/value
    a = wait_for(lambda: influx.points(f"SELECT * FROM alarm WHERE sensor = '{sensor}'", DB), 10,
                 "alarm point")
    ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["sensor"] == sensor, 1, "event")
    assert len(a) == 1, a
    a = a[0]
    assert {k: a[k] for k in ("sensor", "rule", "class", "district", "school")} == {
        "sensor": sensor, "rule": RULE, "class": "supervisory", "district": "testdist",
        "school": "test-school"}, a
    assert a["state"] == ev["state"] == "unacked" and a["value"] == -12.34, a
    assert a["level"] == ev["level"] and isinstance(a["level"], int), a
    assert a["time"] == ts_ns(ev["raised_at"]) or a["transition"] == "raise", a
    types = {row["fieldKey"]: row["fieldType"] for row in influx.points('SHOW FIELD KEYS FROM "alarm"', DB)}
    assert types.get("level") == "integer" and types.get("state") == "string", types

    # gateway: integer fields, the same numbers as on P/metrics
    met = col.wait_json(f"{PREFIX}/metrics", lambda t, o: True, 1, "metrics")
    g = wait_for(lambda: influx.points('SELECT * FROM "gateway"', DB), 10, "gateway point")
    types = {row["fieldKey"]: row["fieldType"] for row in influx.points('SHOW FIELD KEYS FROM "gateway"', DB)}
    for k in ("outbox", "readings", "dropped", "rss_kb", "uptime_s"):
        assert types.get(k) == "integer", f"gateway.{k} is {types.get(k)} ({types})"
    g0 = next(r for r in g if r["time"] == ts_ns(met["ts"]))
    for k, v in met.items():
        if k not in ("seq", "ts"):
            assert g0[k] == v, f"gateway.{k}: influx {g0[k]!r} != P/metrics {v!r}"
    assert g0["district"] == "testdist" and g0["school"] == "test-school", g0
    # What line protocol cannot carry, as documented in lineproto.c: a newline becomes a
    # space, a trailing backslash is dropped, an absent floor is no tag at all.
    r2 = wait_for(lambda: series_points(influx, "odd_kind-1", "odd-2"), 10, "odd-2 points")[0]
    assert (r2["building"], r2["zone"], r2.get("floor")) == ("two lines", "ends in ", None), r2
    log(f"{len(tele)} telemetry points round-tripped")
    col.close()


# ---- b. influxd down for a while under steady load ----

NSENSORS = 10


def hydrant_school(wd, n=NSENSORS):
    sim, bus, profile, sensors, ids = sim_hydrants(wd, n)
    body = (f"modbus = ( {bus} );\nprofiles = {{ {profile} }};\n"
            f"sensors = (\n{sensors}\n);\n")
    return sim, body, ids


def httpd_stat(influx, name):
    for row in influx.points("SHOW STATS FOR 'httpd'", None):
        return row[name]
    return 0


def points_written_ok(influx):
    """influxd's count of points it accepted over HTTP since it started (duplicates too)."""
    return httpd_stat(influx, "pointsWrittenOK")


def influx_times(influx, measurement, sensor):
    return [r["time"] for r in influx.points(
        f"SELECT pressure FROM \"{measurement}\" WHERE sensor = '{sensor}'", DB)]


def count_all_points(influx):
    """Every point in the database, all measurements and fields."""
    total = 0
    for row in influx.points("SHOW MEASUREMENTS", DB):
        m = row["name"]
        for r in influx.points(f'SELECT * FROM "{m}" GROUP BY *', DB):
            total += 1
    return total


def test_outage_under_load(wd):
    broker = Mosquitto(wd).start()
    influx = Influxd(wd).start()
    influx.create_database(DB)
    sim, body, sensors = hydrant_school(wd)
    gw = Gateway(wd, site_config(os.path.join(wd.path, "state"), broker.port,
                                 'store = { commit_ms = 100; };\n' + body + influx_section(influx)))
    col = Collector(broker.port, f"{PREFIX}/#")
    gw.start()
    wait_for(lambda: all(influx_times(influx, "hydrant_pressure", s) for s in sensors), 15,
             "points of every sensor in influxd")
    # Freeze the gateway while influxd's counter is read and influxd stops, so no
    # write slips in between (the counter dies with the process).
    gw.proc.send_signal(signal.SIGSTOP)
    wait_for(lambda: httpd_stat(influx, "writeReqActive") == 0, 5, "no write in flight")
    written_before = points_written_ok(influx)
    log_at = len(gw.output())
    n_before = len(col.all(f"{PREFIX}/telemetry/"))
    t_down = time.monotonic()
    assert influx.stop() == 0
    gw.proc.send_signal(signal.SIGCONT)
    gw.wait_output("WARN outbox: sink influx failed, will retry", 10, start=log_at)
    # ~10 s of load with influxd gone: 10 sensors x 1/s
    wait_for(lambda: len(col.all(f"{PREFIX}/telemetry/")) >= n_before + 10 * NSENSORS, 20,
             "10 s of telemetry with influxd down")
    influx.start()
    log(f"influxd was down {time.monotonic() - t_down:.1f} s")
    gw.wait_output("INFO outbox: sink influx delivering again", 30, start=log_at)
    # a few more seconds of live load after the backlog
    n_up = len(col.all(f"{PREFIX}/telemetry/"))
    wait_for(lambda: len(col.all(f"{PREFIX}/telemetry/")) >= n_up + 3 * NSENSORS, 10,
             "telemetry after influxd came back")

    # What the hub saw so far, per sensor; InfluxDB must end up with exactly that.
    hub = telemetry_by_sensor(col, sensors)
    for s in sensors:
        seq_ts = [ts_ns(o["ts"]) for t, o, _, _ in first_by_seq(col.json(f"{PREFIX}/telemetry/"))
                  if t == f"{PREFIX}/telemetry/{s}"]
        assert seq_ts == sorted(seq_ts) and len(set(seq_ts)) == len(seq_ts), \
            f"{s}: telemetry timestamps not strictly increasing in seq order"

    def caught_up():
        for s in sensors:
            have = set(influx_times(influx, "hydrant_pressure", s))
            if not set(hub[s]) <= have:
                return False
        return True
    wait_for(caught_up, 30, "influxd to hold every point the hub saw")
    total = 0
    for s in sensors:
        last = max(hub[s])
        rows = influx.points(f"SELECT pressure FROM hydrant_pressure WHERE sensor = '{s}' "
                             f"AND time <= {last}", DB)
        times = [r["time"] for r in rows]
        assert times == sorted(set(times)), f"{s}: influx times not strictly increasing"
        assert len(times) == len(hub[s]), \
            f"{s}: influx has {len(times)} points up to {last}, the hub saw {len(hub[s])}"
        for r in rows:
            assert r["pressure"] == hub[s][r["time"]]["pressure"], (s, r, hub[s][r["time"]])
        total += len(times)
    # Exactly once: what influxd accepted over HTTP (both runs) against what it holds.
    # Stop the gateway first so no write is in flight while we count.
    assert gw.stop() == 0
    accepted = written_before + points_written_ok(influx)
    stored = count_all_points(influx)
    dups = accepted - stored
    log(f"{total} telemetry points checked; influxd accepted {accepted} points, holds {stored} "
        f"({dups} written twice)")
    # influxd stopped with no write in flight (the gateway was frozen), so at-least-once
    # has no excuse here: nothing may have been written twice.
    assert dups == 0, f"{dups} points were written twice (accepted {accepted}, stored {stored})"
    col.close()


# ---- c. one sensor's lines refused (400, field type conflict) in mixed batches ----

def tanks_and_pump(wd, port):
    slave = ModbusSlave(wd, {u: {"holding": [10 * u]} for u in (1, 2, 3, 4)}, port=port).start()
    body = f'''
modbus = ( {{ name = "bus"; tcp = "127.0.0.1:{slave.port}"; timeout_ms = 500; }} );
profiles = {{ p = {{ points = ( {{ name = "level"; address = 0; }} ); }}; }};
sensors = (
  {{ id = "tank-1"; kind = "tank"; profile = "p"; modbus = "bus"; unit_id = 1; interval_s = 1; }},
  {{ id = "tank-2"; kind = "tank"; profile = "p"; modbus = "bus"; unit_id = 2; interval_s = 1; }},
  {{ id = "tank-3"; kind = "tank"; profile = "p"; modbus = "bus"; unit_id = 3; interval_s = 1; }},
  {{ id = "pump-1"; kind = "pump"; profile = "p"; modbus = "bus"; unit_id = 4; interval_s = 1; }} );
'''
    return slave, body


def hub_seqs(col, sensor):
    topic = f"{PREFIX}/telemetry/{sensor}"
    return sorted({o["seq"] for t, o, _, _ in col.json(topic) if t == topic})


def hub_times(col, sensor):
    topic = f"{PREFIX}/telemetry/{sensor}"
    return {ts_ns(o["ts"]) for t, o, _, _ in col.json(topic) if t == topic}


def test_refused_line(wd):
    broker = Mosquitto(wd).start()
    influx = Influxd(wd).start()
    influx.create_database(DB)
    # `level` of measurement `pump` becomes a string field: every float the gateway
    # writes there later is a field type conflict, refused by influxd with 400.
    status, reply = influx.write('pump,sensor=pump-1 level="text"\n', DB)
    assert status == 204, (status, reply)
    slave, body = tanks_and_pump(wd, None)
    state = os.path.join(wd.path, "state")
    gw = Gateway(wd, site_config(state, broker.port, 'store = { commit_ms = 100; };\n' + body
                                 + influx_section(influx, gzip=False)))
    col = Collector(broker.port, f"{PREFIX}/#")
    gw.start()
    gw.wait_output("WARN outbox: sink influx refused records count=", 15)
    assert "field type conflict" in gw.output(), gw.output()[-2000:]

    def dead():
        return state_db_rows(state, "SELECT seq, type, topic, sink, error FROM dead_letters "
                             "ORDER BY seq")
    wait_for(lambda: len(dead()) >= 3, 15, "3 dead letters")
    mark_tanks = {s: len(hub_times(col, s)) for s in ("tank-1", "tank-2", "tank-3")}
    # It keeps going: more of the good points and more dead letters afterwards.
    wait_for(lambda: all(len(hub_times(col, s)) >= mark_tanks[s] + 3 for s in mark_tanks), 10,
             "3 more polls")
    pump_seen = hub_seqs(col, "pump-1")
    tank_seen = {s: hub_times(col, s) for s in mark_tanks}

    def tanks_in():
        return all(tank_seen[s] <= {r["time"] for r in influx.points(
            f"SELECT level FROM tank WHERE sensor = '{s}'", DB)} for s in tank_seen)
    wait_for(tanks_in, 15, "every tank point the hub saw in influxd")
    wait_for(lambda: set(pump_seen) <= {r[0] for r in dead()}, 15,
             "every pump telemetry record the hub saw in dead_letters")
    rows = dead()
    for seq, rtype, topic, sink, error in rows:
        assert sink == "influx" and topic == "telemetry/pump-1", (seq, rtype, topic, sink, error)
        assert "field type conflict" in error, error
    assert len({r[0] for r in rows}) == len(rows), "a record dead-lettered twice"
    # Only the string written above is in `pump`; the tanks are complete and sensor_health
    # of the pump (another measurement) arrived too.
    pump = influx.points("SELECT * FROM pump", DB)
    assert [r["level"] for r in pump] == ["text"], pump
    assert influx.points("SELECT * FROM sensor_health WHERE sensor = 'pump-1'", DB)
    out = gw.output()
    n_influx = out.count("WARN influx: database \"campus\" refused lines status=400")
    n_outbox = out.count("WARN outbox: sink influx refused records")
    log(f"{len(rows)} dead letters, {sum(len(v) for v in tank_seen.values())} tank points "
        f"delivered; logged 'influx: refused lines' {n_influx}x, 'outbox: refused records' "
        f"{n_outbox}x")
    # One sensor refused at every poll is one repeating fault: logged once, then with
    # growing spacing (README, log.h), not once per batch.
    assert n_influx <= 2, f"'refused lines' logged {n_influx} times in a few seconds"
    col.close()


# ---- d. 401: wrong password, fixed by a reload ----

USER, GOOD_PW, BAD_PW = "gwriter", "corr3ct-H0rse", "Wr0ng-Batt3ry-st4ple"


def test_bad_credentials(wd):
    import base64
    broker = Mosquitto(wd).start()
    influx = Influxd(wd, auth=(USER, GOOD_PW)).start()
    influx.create_database(DB)
    slave, body = tanks_and_pump(wd, None)
    state = os.path.join(wd.path, "state")

    def config(pw):
        return site_config(state, broker.port, 'store = { commit_ms = 100; };\n' + body
                           + influx_section(influx, f'username = "{USER}"; password = "{pw}";'))
    gw = Gateway(wd, config(BAD_PW))
    col = Collector(broker.port, f"{PREFIX}/#")
    gw.start()
    gw.wait_output("ERROR influx: ", 15)
    err = [line for line in gw.output().splitlines() if line.startswith("ERROR influx:")][0]
    assert "credentials" in err and "401" in err, err

    def outbox_rows():
        return state_db_rows(state, "SELECT COUNT(*) FROM outbox")[0][0]
    n0 = outbox_rows()
    wait_for(lambda: outbox_rows() >= n0 + 20, 15, "the outbox to grow by 20 records")
    assert influx.count("tank", DB) == 0
    # A reload (the status goes out with it) with the fixed password.
    with open(gw.config_path, "w") as f:
        f.write(config(GOOD_PW))
    mark = col.mark()
    buffered = outbox_rows()
    gw.reload()
    gw.wait_output("config reloaded", 10)
    st = col.wait_json(f"{PREFIX}/status", lambda t, o: o.get("online"), 10, "status after reload",
                       since=mark)
    assert st["outbox"] >= 20, f"status after the reload shows outbox={st['outbox']} (db {buffered})"
    seen = {s: hub_times(col, s) for s in ("tank-1", "tank-2", "tank-3", "pump-1")}

    def all_in():
        for s, times in seen.items():
            kind = "pump" if s.startswith("pump") else "tank"
            have = {r["time"] for r in influx.points(
                f"SELECT level FROM {kind} WHERE sensor = '{s}'", DB)}
            if not times <= have:
                return False
        return True
    wait_for(all_in, 20, "every point buffered during the 401s in influxd")
    wait_for(lambda: outbox_rows() < 20, 10, "the outbox to drain")
    out = gw.output()
    # one fault, one line (then with growing spacing), not one per retry
    assert out.count("refuses our credentials") == 1, out.count("refuses our credentials")
    assert out.count("WARN outbox: sink influx failed") <= 2, out.count("WARN outbox: sink influx failed")
    for secret in (BAD_PW, GOOD_PW, base64.b64encode(f"{USER}:{BAD_PW}".encode()).decode(),
                   base64.b64encode(f"{USER}:{GOOD_PW}".encode()).decode()):
        assert secret not in out, "a password (or its basic-auth form) is in the log"
    log(f"{sum(len(v) for v in seen.values())} points delivered after the fix; "
        f"outbox had {buffered} records")
    col.close()


# ---- e. the database does not exist yet (404): buffered until it is created ----

def test_missing_database(wd):
    broker = Mosquitto(wd).start()
    influx = Influxd(wd).start()
    slave, body = tanks_and_pump(wd, None)
    state = os.path.join(wd.path, "state")
    gw = Gateway(wd, site_config(state, broker.port, 'store = { commit_ms = 100; };\n' + body
                                 + influx_section(influx)))
    col = Collector(broker.port, f"{PREFIX}/#")
    gw.start()
    gw.wait_output(f'ERROR influx: database "{DB}" does not exist', 15)
    wait_for(lambda: len(hub_times(col, "tank-1")) >= 3, 10, "3 polls while the database is missing")
    assert state_db_rows(state, "SELECT COUNT(*) FROM dead_letters")[0][0] == 0, \
        "records dead-lettered for a missing database"
    influx.create_database(DB)
    seen = hub_times(col, "tank-1")
    wait_for(lambda: seen <= {r["time"] for r in influx.points(
        "SELECT level FROM tank WHERE sensor = 'tank-1'", DB)}, 20,
        "the points buffered while the database was missing")
    assert gw.output().count("ERROR influx: database") == 1, "the 404 is logged more than once"
    col.close()


if __name__ == "__main__":
    run([test_round_trip, test_outage_under_load, test_refused_line, test_bad_credentials,
         test_missing_database])
