#!/usr/bin/python3
"""LoRaWAN over GWMP (issue #4): the test plays one or two Semtech UDP packet
forwarders against a real gateway and a real mosquitto. Every uplink is built
by the npm package lora-packet (lora_frames.js), not by our C code.

Readings and ACKs, deduplication of copies from two forwarders, every reject
reason counted on P/metrics (SIGUSR1) with good traffic still served, 32-bit
frame counters and their persistence over a restart, forwarder status,
health with frame loss, and the offline rule of a LoRa sensor."""

import json
import socket

from harness import (PREFIX, Collector, Forwarder, Gateway, Mosquitto, log, lora_frames,
                     metrics_now, retained, run, site_config, state_db_rows, telemetry_values,
                     wait_for)

SMOKE = {"id": "A-3F-smoke-301", "kind": "smoke", "profile": "smoke_x", "dev_addr": "26011BDA",
         "nwk_s_key": "2B7E151628AED2A6ABF7158809CF4F3C",
         "app_s_key": "000102030405060708090A0B0C0D0E0F"}
DOOR = {"id": "A-1F-door-east", "kind": "exit_door", "profile": "door_x", "dev_addr": "26011BDB",
        "nwk_s_key": "F0E1D2C3B4A5968778695A4B3C2D1E0F",
        "app_s_key": "11223344556677889900AABBCCDDEEFF"}
LPP = {"id": "B-2F-env-1", "kind": "environment", "profile": "lpp", "dev_addr": "26011BDC",
       "nwk_s_key": "00112233445566778899AABBCCDDEEFF",
       "app_s_key": "FFEEDDCCBBAA99887766554433221100"}
STRANGER = {"dev_addr": "26FFFFFF", "nwk_s_key": "A0" * 16, "app_s_key": "B0" * 16}

PROFILES = '''profiles = {
  smoke_x = { codec = "layout"; fields = (
                { name = "smoke"; byte = 0; bit = 0; type = "bool"; },
                { name = "battery"; byte = 1; type = "u8"; unit = "%"; } ); };
  door_x  = { codec = "layout"; fields = (
                { name = "state"; byte = 0; type = "u8"; enum = [ "closed", "open", "locked" ]; },
                { name = "battery"; byte = 1; type = "u8"; unit = "%"; } ); };
  lpp     = { codec = "cayenne_lpp"; };
};
'''

REASONS = ("short", "version", "identifier", "json", "oversize", "rxpk", "crc", "malformed",
           "not_data_up", "major", "unknown_device", "bad_mic", "replay", "fcnt_gap", "decode")

# The largest UDP payload IPv4 carries: a "64 KiB datagram" as near as the wire allows.
MAX_UDP = 65507


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sensor_cfg(dev, expect_every_s=3600):
    return (f'{{ id = "{dev["id"]}"; kind = "{dev["kind"]}"; profile = "{dev["profile"]}"; '
            f'expect_every_s = {expect_every_s}; '
            f'lora = {{ dev_addr = "{dev["dev_addr"]}"; nwk_s_key = "{dev["nwk_s_key"]}"; '
            f'app_s_key = "{dev["app_s_key"]}"; }}; }}')


class Site:
    """mosquitto + a collector on P/# + the gateway with a LoRa listener on a free port."""

    def __init__(self, wd, devices, dedup_ms=200, offline_s=120, expect_every_s=3600, rules=""):
        self.wd = wd
        self.broker = Mosquitto(wd).start()
        self.port = free_udp_port()
        sensors = ",\n  ".join(sensor_cfg(d, expect_every_s) for d in devices)
        cfg = site_config(wd.path, self.broker.port, f'''
lora = {{ listen = "127.0.0.1:{self.port}"; dedup_ms = {dedup_ms}; forwarder_offline_s = {offline_s}; }};
{PROFILES}
sensors = (
  {sensors}
);
{rules}''')
        self.col = Collector(self.broker.port, f"{PREFIX}/#")
        self.gw = Gateway(wd, cfg).start()
        self.forwarders = []

    def forwarder(self, eui):
        f = Forwarder(self.port, eui)
        self.forwarders.append(f)
        # The listener is up once a keep-alive is acknowledged.
        wait_for(lambda: f.pull(timeout=0.5), 15, f"PULL_ACK from the gateway on udp {self.port}")
        return f

    def restart(self):
        rc = self.gw.stop()
        assert rc == 0, f"gateway exited {rc} on SIGTERM"
        self.gw.start()
        for f in self.forwarders:
            wait_for(lambda f=f: f.pull(timeout=0.5), 15, "PULL_ACK after the restart")

    def readings(self, dev):
        return telemetry_values(self.col, PREFIX, dev["id"])

    def wait_reading(self, dev, fcnt, timeout=10):
        topic = f"{PREFIX}/telemetry/{dev['id']}"
        return self.col.wait_json(topic, lambda t, o: t == topic and o.get("fcnt") == fcnt, timeout,
                                  f"{dev['id']} reading with fcnt {fcnt}")

    def metrics(self):
        m = metrics_now(self.gw, self.col)
        for r in REASONS:
            assert isinstance(m.get(f"lora_rejected_{r}"), int), f"lora_rejected_{r} missing: {m}"
        for k in ("lora_datagrams", "lora_frames", "lora_duplicates", "lora_readings",
                  "lora_relaxed"):
            assert isinstance(m.get(k), int), f"{k} missing: {m}"
        return m


def frames(dev, *items):
    """PHYPayloads of dev for items (fcnt, payload bytes[, fport]) by lora-packet."""
    specs = []
    for it in items:
        fcnt, payload = it[0], it[1]
        spec = {k: dev[k] for k in ("dev_addr", "nwk_s_key", "app_s_key")}
        spec.update(fcnt=fcnt, payload=bytes(payload), fport=it[2] if len(it) > 2 else 1)
        specs.append(spec)
    return lora_frames(specs)


def ack_of(version, token, ident):
    return bytes([version]) + token.to_bytes(2, "big") + bytes([ident])


def delta(m1, m0, key):
    return m1[key] - m0[key]


def assert_deltas(m1, m0, expected):
    """Every lora_rejected_<reason> moved by exactly expected.get(reason, 0)."""
    got = {r: delta(m1, m0, f"lora_rejected_{r}") for r in REASONS}
    want = {r: expected.get(r, 0) for r in REASONS}
    assert got == want, f"rejects counted {got}, expected {want}"


def forwarder_status(site, f):
    topic = f"{PREFIX}/forwarders/{f.eui_hex}"
    got = retained(site.broker.port, topic)
    return json.loads(got[topic]) if got.get(topic) else None


def health(site, dev):
    topic = f"{PREFIX}/health/{dev['id']}"
    got = retained(site.broker.port, topic)
    return json.loads(got[topic]) if got.get(topic) else None


def test_readings_and_acks(wd):
    site = Site(wd, [SMOKE, DOOR])
    fwd = site.forwarder(0xAA555A0000000101)

    # PULL_ACK: version and token echoed, identifier 4, nothing more.
    for version in (1, 2):
        for token in (0x0000, 0xBEEF, 0xFFFF):
            got = fwd.pull(version=version, token=token)
            assert got == ack_of(version, token, 0x04), f"PULL v{version} {token:#x}: {got!r}"

    s1, s2 = frames(SMOKE, (1, [0x01, 87]), (2, [0x00, 86]))
    d7, d8 = frames(DOOR, (7, [2, 55]), (8, [0, 54]))

    # PUSH_ACK for a version 1 forwarder, one frame.
    got = fwd.push([s1], rssi=-71.5, lsnr=6.25, version=1, token=0x1234)
    assert got == ack_of(1, 0x1234, 0x01), got
    r = site.wait_reading(SMOKE, 1)
    assert r["values"] == {"smoke": True, "battery": 87}, r
    assert r["sensor"] == SMOKE["id"] and r["kind"] == "smoke", r
    assert r["rssi"] == -71.5 and r["snr"] == 6.25 and r["forwarders"] == 1, r

    # Version 2, two devices' frames in one PUSH_DATA.
    got = fwd.push([d7, d8], rssi=-101.0, lsnr=-4.5, version=2, token=0xFFFF)
    assert got == ack_of(2, 0xFFFF, 0x01), got
    r7 = site.wait_reading(DOOR, 7)
    r8 = site.wait_reading(DOOR, 8)
    assert r7["values"] == {"state": "locked", "battery": 55}, r7
    assert r8["values"] == {"state": "closed", "battery": 54}, r8
    assert r7["kind"] == "exit_door" and r7["rssi"] == -101.0 and r7["snr"] == -4.5, r7

    got = fwd.push([s2], version=2, token=0x0000)
    assert got == ack_of(2, 0x0000, 0x01), got
    r = site.wait_reading(SMOKE, 2)
    assert r["values"] == {"smoke": False, "battery": 86}, r

    # A PUSH_DATA with only a stat report is acknowledged too.
    got = fwd.push(stat_report={"rxnb": 3, "rxok": 3, "rxfw": 3, "ackr": 100.0, "dwnb": 0,
                                "txnb": 0}, version=1, token=0x00FF)
    assert got == ack_of(1, 0x00FF, 0x01), got

    fcnts = [o["fcnt"] for o in site.readings(SMOKE)]
    assert fcnts == [1, 2], fcnts
    assert [o["fcnt"] for o in site.readings(DOOR)] == [7, 8]
    assert fwd.unexpected == [], f"datagrams that were not our acks: {fwd.unexpected!r}"
    m = site.metrics()
    assert m["lora_readings"] == 4 and m["lora_frames"] == 4 and m["lora_duplicates"] == 0, m
    assert_deltas(m, {f"lora_rejected_{r}": 0 for r in REASONS}, {})


def test_dedup_two_forwarders(wd):
    site = Site(wd, [SMOKE], dedup_ms=400)
    fa = site.forwarder(0xAA555A00000000A1)
    fb = site.forwarder(0xAA555A00000000B2)
    m0 = site.metrics()
    f1, f2, f3 = frames(SMOKE, (1, [0x01, 50]), (2, [0x01, 49]), (3, [0x00, 49]))

    # The weaker copy first: the reading must carry the better one's signal.
    assert fa.push([f1], rssi=-95.0, lsnr=-3.5)
    assert fb.push([f1], rssi=-48.0, lsnr=8.75)
    r = site.wait_reading(SMOKE, 1)
    assert r["forwarders"] == 2, r
    assert r["rssi"] == -48.0 and r["snr"] == 8.75, r
    assert r["values"] == {"smoke": True, "battery": 50}, r

    # A copy after the window is a replay, not a second reading.
    assert fb.push([f1], rssi=-47.0, lsnr=9.0)
    # One forwarder sending the same frame twice still counts as one forwarder.
    assert fa.push([f2], rssi=-80.0, lsnr=1.0)
    assert fa.push([f2], rssi=-80.0, lsnr=1.0)
    assert fb.push([f2], rssi=-85.0, lsnr=0.5)
    r = site.wait_reading(SMOKE, 2)
    assert r["forwarders"] == 2 and r["rssi"] == -80.0 and r["snr"] == 1.0, r
    # Barrier: one forwarder alone, later.
    assert fb.push([f3], rssi=-60.0, lsnr=5.0)
    r = site.wait_reading(SMOKE, 3)
    assert r["forwarders"] == 1 and r["rssi"] == -60.0, r

    fcnts = [o["fcnt"] for o in site.readings(SMOKE)]
    assert fcnts == [1, 2, 3], f"one reading per frame expected: {fcnts}"
    m1 = site.metrics()
    assert delta(m1, m0, "lora_duplicates") == 3, (m0, m1)
    assert delta(m1, m0, "lora_readings") == 3, (m0, m1)
    assert delta(m1, m0, "lora_frames") == 3, (m0, m1)
    assert_deltas(m1, m0, {"replay": 1})


def test_rejects_counted_and_good_traffic_served(wd):
    site = Site(wd, [SMOKE, DOOR, LPP])
    fwd = site.forwarder(0xAA555A0000000C01)
    m0 = site.metrics()

    good10, old5, good11, good12, good13, gap = frames(
        SMOKE, (10, [0, 90]), (5, [1, 90]), (11, [0, 89]), (12, [0, 88]), (13, [1, 88]),
        (10 + 20000, [1, 1]))
    bad_key = frames(dict(SMOKE, nwk_s_key="DEADBEEF" * 4), (11, [1, 99]))[0]
    (stranger,) = frames(STRANGER, (1, [1, 1]))
    lpp_bad, lpp_good = frames(LPP, (1, [0x01, 0xFE, 0x00]), (2, [0x01, 0x67, 0x00, 0xFA]))

    assert fwd.push([good10])
    site.wait_reading(SMOKE, 10)

    def mutated(phy, index, value):
        b = bytearray(phy)
        b[index] = value
        return bytes(b)

    expected = {}

    def push_rejected(reason, n=1, **kw):
        ack = fwd.push(**kw)
        assert ack, f"no PUSH_ACK for a valid PUSH_DATA carrying a {reason} frame"
        expected[reason] = expected.get(reason, 0) + n

    # LoRaWAN-level rejects: the datagram itself is fine and acknowledged.
    push_rejected("replay", frames=[good10])                        # the same frame again
    push_rejected("replay", frames=[old5])                          # an older counter
    push_rejected("fcnt_gap", frames=[gap])                         # 20000 frames ahead
    push_rejected("bad_mic", frames=[mutated(good11, -1, good11[-1] ^ 0x01)])
    push_rejected("bad_mic", frames=[bad_key])                      # signed with another key
    push_rejected("bad_mic", frames=[good11[:-1]])                  # cut by one byte: MIC moves
    push_rejected("malformed", frames=[good11[:9]])                 # shorter than any frame
    push_rejected("crc", frames=[good11], stat=-1)                  # radio CRC failed
    push_rejected("not_data_up", frames=[mutated(good11, 0, 0x60)])  # unconfirmed data down
    push_rejected("major", frames=[mutated(good11, 0, 0x41)])       # LoRaWAN major 1
    push_rejected("unknown_device", frames=[stranger])
    push_rejected("rxpk", rxpk=[fwd.rxpk(good11, data="@@not base64@@")])
    push_rejected("rxpk", rxpk=[fwd.rxpk(good11, size=len(good11) + 1)])
    push_rejected("decode", frames=[lpp_bad])                       # unknown LPP type 0xFE

    # Datagram-level rejects.
    fwd.push_raw(b'{"rxpk":[{"data":', wait=False)
    expected["json"] = 1
    head, _ = fwd.header(2, Forwarder.PUSH_DATA)
    fwd.send(head[:3])
    expected["short"] = 1
    head, _ = fwd.header(3, Forwarder.PUSH_DATA)       # GWMP version 3, a good frame inside
    fwd.send(head + fwd.eui.to_bytes(8, "big") + json.dumps({"rxpk": [fwd.rxpk(good12)]}).encode())
    expected["version"] = 1
    head, _ = fwd.header(2, 0x09)
    fwd.send(head + fwd.eui.to_bytes(8, "big"))
    expected["identifier"] = 1
    # The largest datagram UDP carries, a good frame inside: refused unread.
    head, _ = fwd.header(2, Forwarder.PUSH_DATA)
    body = json.dumps({"rxpk": [fwd.rxpk(good13)]}).encode()
    body = body[:-1] + b',"pad":"'
    body += b"x" * (MAX_UDP - len(head) - 8 - len(body) - 2) + b'"}'
    big = head + fwd.eui.to_bytes(8, "big") + body
    assert len(big) == MAX_UDP
    fwd.send(big)
    expected["oversize"] = 1

    # Good traffic after all of it. The frames rejected for CRC, a forged or cut MIC,
    # and inside refused datagrams left the device's counter at 10.
    for phy in (good11, good12, good13):
        assert fwd.push([phy]), "no PUSH_ACK for a good frame after the rejects"
    assert fwd.push([lpp_good])
    for fcnt in (11, 12, 13):
        site.wait_reading(SMOKE, fcnt)
    r = site.wait_reading(LPP, 2)
    assert r["values"] == {"temperature_1": 25.0}, r
    fcnts = [o["fcnt"] for o in site.readings(SMOKE)]
    assert fcnts == [10, 11, 12, 13], f"rejected frames became readings: {fcnts}"
    assert [o["fcnt"] for o in site.readings(LPP)] == [2], site.readings(LPP)
    assert site.readings(DOOR) == []

    m1 = site.metrics()
    log(f"rejects: { {r: delta(m1, m0, 'lora_rejected_' + r) for r in REASONS} }")
    assert_deltas(m1, m0, expected)
    assert delta(m1, m0, "lora_readings") == 5, (m0, m1)
    assert site.gw.alive()
    assert "26FFFFFF" in site.gw.output(), "the unknown DevAddr is not named in the log"


def test_fcnt_32bit_and_restart(wd):
    site = Site(wd, [SMOKE], dedup_ms=100)
    fwd = site.forwarder(0xAA555A0000000D01)
    # 65541 goes on air as 5: the gateway restores the high bits from 65530.
    f65530, f65541, f65542 = frames(SMOKE, (65530, [0, 70]), (65541, [1, 69]), (65542, [0, 68]))
    assert f65541[6:8] == bytes([5, 0]), f"FCnt on air: {f65541[6:8].hex()}"

    assert fwd.push([f65530])
    r = site.wait_reading(SMOKE, 65530)
    assert r["values"] == {"smoke": False, "battery": 70}, r
    assert fwd.push([f65541])
    r = site.wait_reading(SMOKE, 65541)
    assert r["values"] == {"smoke": True, "battery": 69}, r
    key = f"lora.fcnt.{SMOKE['dev_addr']}"

    def stored():
        rows = state_db_rows(wd.path, "SELECT value FROM kv WHERE key = ?", (key,))
        return rows and int(rows[0][0]) == 65541
    wait_for(stored, 10, f"{key} = 65541 in state.db")

    site.restart()
    m0 = site.metrics()
    mark = site.col.mark()
    assert fwd.push([f65541]), "no PUSH_ACK after the restart"
    assert fwd.push([f65530])
    assert fwd.push([f65542])
    r = site.wait_reading(SMOKE, 65542)
    assert r["values"] == {"smoke": False, "battery": 68}, r
    topic = f"{PREFIX}/telemetry/{SMOKE['id']}"
    after = [o["fcnt"] for t, o, _, _ in site.col.json_since(mark, topic) if t == topic]
    assert after == [65542], f"readings after the restart: {after}"
    m1 = site.metrics()
    assert_deltas(m1, m0, {"replay": 2})
    wait_for(lambda: int(state_db_rows(wd.path, "SELECT value FROM kv WHERE key = ?",
                                       (key,))[0][0]) == 65542, 10, f"{key} = 65542")


def test_forwarder_status(wd):
    offline_s = 10  # the smallest forwarder_offline_s the config takes
    site = Site(wd, [SMOKE], offline_s=offline_s)
    quiet = site.forwarder(0xAA555A0000000E01)
    chatty = site.forwarder(0xAA555A0000000E02)
    topic_q = f"{PREFIX}/forwarders/{quiet.eui_hex}"
    # First heard (its keep-alive in site.forwarder): online, nothing received yet.
    st = wait_for(lambda: forwarder_status(site, quiet), 10, "retained forwarder status")
    assert st["online"] is True and st["eui"] == quiet.eui_hex and st["last_seen"], st
    assert st["rxpk"] == 0 and "stat" not in st and isinstance(st["seq"], int), st

    # A stat report (with an uplink in the same PUSH_DATA) republishes it.
    (f1,) = frames(SMOKE, (1, [0, 99]))
    stat = {"rxnb": 12, "rxok": 10, "rxfw": 9, "ackr": 87.5, "dwnb": 2, "txnb": 1}
    mark = site.col.mark()
    assert quiet.push([f1], stat_report=stat)
    st = site.col.wait_json(topic_q, lambda t, o: t == topic_q and "stat" in o, 10,
                            "forwarder status with stat", since=mark)
    assert st["online"] is True and st["stat"] == stat and st["rxpk"] == 1, st
    site.wait_reading(SMOKE, 1)
    r = retained(site.broker.port, topic_q)
    assert r.get(topic_q) and json.loads(r[topic_q])["stat"] == stat, r

    # Silence from `quiet` while `chatty` keeps sending keep-alives.
    def quiet_offline():
        assert chatty.pull(timeout=1), "no PULL_ACK for chatty"
        for t, o, _, _ in site.col.json_since(mark, topic_q):
            if t == topic_q and o and o.get("online") is False:
                return o
        return None
    st = wait_for(quiet_offline, offline_s + 10, f"{quiet.eui_hex} offline", interval=1)
    assert st["eui"] == quiet.eui_hex, st
    got = forwarder_status(site, quiet)
    assert got and got["online"] is False, got
    ch = forwarder_status(site, chatty)
    assert ch and ch["online"] is True, f"a forwarder sending keep-alives went offline: {ch}"

    # Heard again: online again.
    mark = site.col.mark()
    assert quiet.pull()
    site.col.wait_json(topic_q, lambda t, o: t == topic_q and o["online"] is True, 10,
                       "forwarder back online", since=mark)


def test_health_and_frame_loss(wd):
    site = Site(wd, [SMOKE])
    fwd = site.forwarder(0xAA555A0000000F01)
    topic = f"{PREFIX}/health/{SMOKE['id']}"
    f1, f2, f3, f10 = frames(SMOKE, (1, [0, 77]), (2, [0, 77]), (3, [0, 76]), (10, [0, 75]))
    for phy in (f1, f2, f3):
        assert fwd.push([phy], rssi=-88.0, lsnr=4.25)
        site.wait_reading(SMOKE, int.from_bytes(phy[6:8], "little"))
    h = wait_for(lambda: (lambda h: h if h and h.get("battery") == 76 else None)(
        health(site, SMOKE)), 10, "retained health with battery 76")
    assert h["online"] is True and h["rssi"] == -88.0 and h["snr"] == 4.25, h
    assert h["frame_loss"] == 0, f"no frame lost yet: {h}"

    mark = site.col.mark()
    assert fwd.push([f10], rssi=-91.0, lsnr=2.5)
    h = site.col.wait_json(topic, lambda t, o: t == topic and o.get("battery") == 75, 10,
                           "health after the FCnt skip", since=mark)
    # 4..9 lost of 1..10.
    assert 0 < h["frame_loss"] <= 100, h
    assert h["rssi"] == -91.0 and h["snr"] == 2.5, h
    log(f"frame_loss after skipping 6 of 10: {h['frame_loss']}")
    r = site.wait_reading(SMOKE, 10)
    assert r["values"] == {"smoke": False, "battery": 75}, r


def test_offline_rule(wd):
    rules = 'rules = ( { name = "sensor offline"; offline_after = 3; class = "trouble"; } );'
    site = Site(wd, [SMOKE], expect_every_s=1, rules=rules)
    fwd = site.forwarder(0xAA555A0000001001)
    key = f"{SMOKE['id']}/sensor-offline"
    f1, f2 = frames(SMOKE, (1, [0, 80]), (2, [0, 80]))
    mark = site.col.mark()
    assert fwd.push([f1])
    site.wait_reading(SMOKE, 1)
    # The sensor falls silent.
    ev = site.col.wait_json(f"{PREFIX}/events", lambda t, o: o.get("key") == key, 15,
                            "offline alarm of the silent LoRa sensor", since=mark)
    assert ev["transition"] == "raise" and ev["class"] == "trouble", ev
    topic = f"{PREFIX}/alarms/{key}"
    a = json.loads(retained(site.broker.port, topic)[topic])
    assert a["state"] == "unacked", a
    wait_for(lambda: (health(site, SMOKE) or {}).get("online") is False, 10,
             "retained health online=false")

    mark = site.col.mark()
    assert fwd.push([f2])
    site.wait_reading(SMOKE, 2)
    ev = site.col.wait_json(f"{PREFIX}/events",
                            lambda t, o: o.get("key") == key and o.get("transition") == "clear",
                            10, "offline alarm clears when the sensor is heard", since=mark)
    assert ev["class"] == "trouble", ev


if __name__ == "__main__":
    import sys
    only = sys.argv[1:]
    tests = [test_readings_and_acks, test_dedup_two_forwarders,
             test_rejects_counted_and_good_traffic_served, test_fcnt_32bit_and_restart,
             test_forwarder_status, test_health_and_frame_loss, test_offline_rule]
    run([t for t in tests if not only or t.__name__ in only])
