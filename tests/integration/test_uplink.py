#!/usr/bin/python3
"""The district uplink: a second mosquitto as the district broker. It goes down for
~20 s under steady load and comes back: every record arrives (gap-free seqs), in
order per stream, the alarm raised meanwhile ahead of the telemetry backlog; and
kill -9 leaves {"online":false} retained there through the uplink's last will."""

import json
import os
import signal
import subprocess
import time

from harness import (PREFIX, Collector, Gateway, ModbusSlave, Mosquitto, free_port, log,
                     retained, run, sim_hydrants, site_config, wait_for)

NSENSORS = 10
DATA_TOPICS = ("telemetry/", "health/", "metrics")
ALARM_TOPICS = ("alarms/", "events")


def stream_of(topic):
    rest = topic[len(PREFIX) + 1:]
    if rest.startswith(DATA_TOPICS):
        return "data"
    if rest.startswith(ALARM_TOPICS):
        return "alarm"
    return None


def setup(wd, uplink_port, hub_port):
    sim, bus, profile, sensors, ids = sim_hydrants(wd, NSENSORS)
    slave = ModbusSlave(wd, {1: {"holding": [40]}}).start()
    body = f'''
store = {{ commit_ms = 100; }};
uplink = {{ host = "127.0.0.1"; port = {uplink_port}; keepalive_s = 5; }};
modbus = ( {bus}, {{ name = "bus2"; tcp = "127.0.0.1:{slave.port}"; timeout_ms = 500; }} );
profiles = {{ {profile} tank = {{ points = ( {{ name = "level"; address = 0; }} ); }}; }};
sensors = (
{sensors},
  {{ id = "tank-1"; kind = "tank"; profile = "tank"; modbus = "bus2"; unit_id = 1; interval_s = 1; }} );
rules = ( {{ name = "tank high"; kind = "tank"; point = "level"; above = 80; class = "alarm"; }} );
'''
    return slave, Gateway(wd, site_config(wd.path, hub_port, body)), ids


def records(col):
    """(index, topic, obj) of every message with a seq, in arrival order."""
    out = []
    for i, (topic, obj, _, _) in enumerate(col.json(f"{PREFIX}/")):
        if isinstance(obj, dict) and "seq" in obj:
            out.append((i, topic, obj))
    return out


def test_uplink_outage(wd):
    hub = Mosquitto(wd).start()
    district = Mosquitto(wd, name="district", persistence=True).start()
    # A persistent session: the district broker keeps our subscription and queues
    # for us over its own restart, so what we see is what the gateway delivered.
    dcol = Collector(district.port, f"{PREFIX}/#", client_id="district-subscriber",
                     clean_session=False)
    hcol = Collector(hub.port, f"{PREFIX}/#")
    slave, gw, ids = setup(wd, district.port, hub.port)
    gw.start()
    dcol.wait_json(f"{PREFIX}/telemetry/h{NSENSORS}", lambda t, o: True, 10, "uplink telemetry")
    wait_for(lambda: len(dcol.all(f"{PREFIX}/telemetry/")) >= 3 * (NSENSORS + 1), 10,
             "3 s of telemetry on the district broker")

    log_at = len(gw.output())
    t_down = time.monotonic()
    assert district.stop() == 0
    gw.wait_output("WARN mqtt: uplink broker unreachable", 10, start=log_at)
    # Everything generated from here on is backlog: the uplink sink is not ready, so
    # none of it can be in libmosquitto's queue from before the outage.
    backlog_from = max(o["seq"] for _, o, _, _ in hcol.json(f"{PREFIX}/")
                       if isinstance(o, dict) and "seq" in o)
    n0 = len(hcol.all(f"{PREFIX}/telemetry/"))
    wait_for(lambda: len(hcol.all(f"{PREFIX}/telemetry/")) >= n0 + 8 * (NSENSORS + 1), 15,
             "8 s of telemetry during the outage")
    slave.set(1, "holding", 0, 95)
    gw.wait_output("WARN alarm: raised key=tank-1/tank-high", 10, start=log_at)
    # ~20 s of outage, measured in polls (11 sensors at 1 s)
    wait_for(lambda: len(hcol.all(f"{PREFIX}/telemetry/")) >= n0 + 19 * (NSENSORS + 1), 30,
             "19 s of telemetry during the outage")
    n_backlog = len(hcol.all(f"{PREFIX}/telemetry/")) - n0
    district.start()
    t_up = time.monotonic()
    gw.wait_output("uplink broker reachable again", 40, start=log_at)
    log(f"district broker down {t_up - t_down:.1f} s ({n_backlog} telemetry records meanwhile); "
        f"uplink back {time.monotonic() - t_up:.1f} s after it")

    # Catch up: every seq the hub saw until now must reach the district broker.
    hub_max = max(o["seq"] for _, o, _, _ in hcol.json(f"{PREFIX}/")
                  if isinstance(o, dict) and "seq" in o)
    wait_for(lambda: {o["seq"] for _, _, o in records(dcol)} >= set(range(backlog_from, hub_max + 1)),
             40, f"the district broker to get every seq up to {hub_max}")
    recs = records(dcol)
    seqs = [o["seq"] for _, _, o in recs]
    first = seqs[0]
    have = set(seqs)
    missing = sorted(set(range(first, hub_max + 1)) - have)
    assert not missing, f"seqs missing on the district broker: {missing[:20]} ({len(missing)})"
    dups = len([s for s in seqs if s <= hub_max]) - len({s for s in seqs if s <= hub_max})
    log(f"district broker: seqs {first}..{hub_max} complete, {dups} duplicates, "
        f"{dcol.connects} subscriber connects")
    assert dups < 500, f"{dups} duplicates (more than one batch)"

    # Per stream, first arrivals come in seq order.
    firsts, seen = [], set()
    for i, topic, o in recs:
        if o["seq"] not in seen:
            seen.add(o["seq"])
            firsts.append((i, topic, o))
    for stream in ("data", "alarm"):
        order = [o["seq"] for _, t, o in firsts if stream_of(t) == stream]
        bad = [(a, b) for a, b in zip(order, order[1:]) if b < a]
        assert not bad, f"{stream} stream out of order: {bad[:10]}"

    # The alarm raised during the outage goes out ahead of the telemetry backlog.
    ev_i, _, ev = next((i, t, o) for i, t, o in firsts
                       if t == f"{PREFIX}/events" and o["key"] == "tank-1/tank-high")
    assert ev["transition"] == "raise", ev
    backlog = [(i, o["seq"]) for i, t, o in firsts
               if stream_of(t) == "data" and "/telemetry/" in t and backlog_from < o["seq"] < ev["seq"]]
    assert len(backlog) >= 5 * NSENSORS, f"only {len(backlog)} backlog records before the alarm"
    late = [s for i, s in backlog if i < ev_i]
    assert not late, (f"{len(late)} backlog telemetry records (seqs {late[:10]}...) reached the "
                      f"district broker before the alarm event seq={ev['seq']}")
    st = json.loads(retained(district.port, f"{PREFIX}/status")[f"{PREFIX}/status"])
    assert st["online"] is True, st
    a = json.loads(retained(district.port, f"{PREFIX}/alarms/tank-1/tank-high")
                   [f"{PREFIX}/alarms/tank-1/tank-high"])
    assert a["state"] == "unacked", a
    dcol.close()
    hcol.close()


def test_uplink_last_will(wd):
    hub = Mosquitto(wd).start()
    district = Mosquitto(wd, name="district").start()
    slave, gw, ids = setup(wd, district.port, hub.port)
    dcol = Collector(district.port, f"{PREFIX}/status")
    gw.start()
    dcol.wait_json(f"{PREFIX}/status", lambda t, o: o.get("online") is True, 10, "online status")
    mark = dcol.mark()
    gw.proc.send_signal(signal.SIGKILL)
    gw.proc.wait()
    # keepalive_s = 5: the broker notices the dead connection at once (socket closed)
    # A status sent just before the kill may still arrive first: wait for the will itself.
    will = dcol.wait_json(f"{PREFIX}/status", lambda t, o: o.get("online") is False, 15,
                          "last will", since=mark)
    assert will == {"online": False}, will
    got = retained(district.port, f"{PREFIX}/status")
    assert json.loads(got[f"{PREFIX}/status"]) == {"online": False}, got
    dcol.close()


def make_ca(wd, name):
    """A CA and a server certificate for 127.0.0.1 signed by it, with openssl."""
    d = os.path.join(wd.path, name)
    os.makedirs(d)

    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         f"/CN={name}", "-keyout", "ca.key", "-out", "ca.crt")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
         "server.key", "-out", "server.csr")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt")
    return d


def test_uplink_tls(wd):
    """The uplink over TLS with certificate checking: the right CA connects and delivers;
    a broker whose certificate another CA signed is refused, and nothing is delivered."""
    good = make_ca(wd, "district-ca")
    rogue = make_ca(wd, "rogue-ca")
    plain = free_port()
    # TLS listener for the gateway (the class's port), a plain one for our subscriber.
    district = Mosquitto(wd, name="district", extra_conf=(
        f"cafile {good}/ca.crt\ncertfile {good}/server.crt\nkeyfile {good}/server.key\n"
        f"listener {plain} 127.0.0.1\nallow_anonymous true\n")).start()
    hub = Mosquitto(wd).start()
    dcol = Collector(plain, f"{PREFIX}/#")
    slave = ModbusSlave(wd, {1: {"holding": [40]}}).start()
    body = f'''
uplink = {{ host = "127.0.0.1"; port = {district.port}; tls = {{ ca_file = "{{CA}}"; }}; }};
modbus = ( {{ name = "bus"; tcp = "127.0.0.1:{slave.port}"; timeout_ms = 500; }} );
profiles = {{ tank = {{ points = ( {{ name = "level"; address = 0; }} ); }}; }};
sensors = ( {{ id = "tank-1"; kind = "tank"; profile = "tank"; modbus = "bus"; unit_id = 1;
              interval_s = 1; }} );
'''
    gw = Gateway(wd, site_config(wd.path, hub.port, body.replace("{CA}", f"{rogue}/ca.crt")),
                 name="rogue").start()
    wait_for(lambda: "uplink broker unreachable" in gw.output(), 15, "the TLS handshake to fail")
    assert "uplink connected" not in gw.output(), gw.output()[-2000:]
    assert dcol.all(f"{PREFIX}/telemetry/") == [], "delivered over an unverified connection"
    assert gw.stop() == 0
    gw = Gateway(wd, site_config(wd.path, hub.port, body.replace("{CA}", f"{good}/ca.crt"))).start()
    msg = dcol.wait_json(f"{PREFIX}/telemetry/tank-1", lambda t, o: o["values"]["level"] == 40,
                         15, "telemetry over TLS on the district broker")
    assert msg["sensor"] == "tank-1"
    gw.wait_output("INFO mqtt: uplink connected", 5)
    assert gw.stop() == 0
    dcol.close()


if __name__ == "__main__":
    run([test_uplink_outage, test_uplink_last_will, test_uplink_tls])
