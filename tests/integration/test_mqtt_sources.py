#!/usr/bin/python3
"""MQTT sources (issue #4 point 7): sensors read from the hub instead of a bus or
the packet forwarder. A Zigbee2MQTT-like JSON device and ChirpStack v4 uplink
events (one decoded by ChirpStack into `object`, one raw `data` decoded by a
layout profile here) become telemetry with the right values and raise rule
alarms; garbage is counted on P/metrics and the gateway keeps serving; the
hub restarting and a config reload both end with the source subscribed again."""

import base64
import json

from harness import (PREFIX, Collector, Gateway, Mosquitto, log, metrics_now, retained, run,
                     site_config, wait_for)

EUI_OBJ = "0004A30B001C0530"  # decoded by ChirpStack: the event carries `object`
EUI_RAW = "0004a30b001c0531"  # raw `data`, decoded here by the smoke_x layout
EUI_STRANGER = "0004a30b001c05ff"

CONFIG = f'''
profiles = {{
  z2m_door = {{ codec = "json"; values = (
      {{ name = "state"; path = "contact"; enum = [ "open", "closed" ]; }},
      {{ name = "battery"; path = "battery"; type = "number"; unit = "%"; }},
      {{ name = "temperature"; path = "sensors.t"; scale = 0.1; unit = "C"; }} ); }};
  cs_smoke = {{ codec = "json"; values = (
      {{ name = "smoke"; path = "smoke"; type = "bool"; }},
      {{ name = "battery"; path = "battery"; }} ); }};
  smoke_x = {{ codec = "layout"; fields = (
      {{ name = "smoke"; byte = 0; bit = 0; type = "bool"; }},
      {{ name = "battery"; byte = 1; type = "u8"; unit = "%"; }} ); }};
}};
sensors = (
  {{ id = "door-3"; kind = "exit_door"; profile = "z2m_door"; expect_every_s = 600;
     mqtt = {{ topic = "zigbee2mqtt/door-3"; }}; }},
  {{ id = "smoke-obj"; kind = "smoke"; profile = "cs_smoke"; expect_every_s = 600;
     mqtt = {{ topic = "application/+/device/+/event/up"; format = "chirpstack";
              dev_eui = "{EUI_OBJ}"; }}; }},
  {{ id = "smoke-raw"; kind = "smoke"; profile = "smoke_x"; expect_every_s = 600;
     mqtt = {{ topic = "application/+/device/+/event/up"; format = "chirpstack";
              dev_eui = "{EUI_RAW}"; }}; }}
);
rules = (
  {{ name = "exit door open"; kind = "exit_door"; point = "state"; equals = "open";
     class = "supervisory"; }},
  {{ name = "smoke detected"; kind = "smoke"; point = "smoke"; equals = true; class = "alarm"; }}
);
'''


def chirpstack_up(dev_eui, fcnt, obj=None, data=None, rx=((-97, 4.5), (-60, -2.0))):
    """A ChirpStack v4 uplink event as its MQTT integration publishes it (JSON marshaler)."""
    ev = {
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "deviceInfo": {"tenantName": "ChirpStack", "applicationId": "7", "applicationName": "school",
                       "deviceProfileName": "smoke", "deviceName": dev_eui, "devEui": dev_eui,
                       "tags": {}},
        "devAddr": "00189440", "adr": True, "dr": 5, "fCnt": fcnt, "fPort": 1, "confirmed": False,
        "rxInfo": [{"gatewayId": f"0016c001f153a1{i:02x}", "rssi": rssi, "snr": snr}
                   for i, (rssi, snr) in enumerate(rx)],
        "txInfo": {"frequency": 868100000},
    }
    if obj is not None:
        ev["object"] = obj
    if data is not None:
        ev["data"] = base64.b64encode(bytes(data)).decode()
    return json.dumps(ev)


def up_topic(dev_eui, event="up"):
    return f"application/7/device/{dev_eui.lower()}/event/{event}"


class Site:
    def __init__(self, wd):
        self.broker = Mosquitto(wd).start()
        self.col = Collector(self.broker.port, f"{PREFIX}/#")
        self.gw = Gateway(wd, site_config(wd.path, self.broker.port, CONFIG))
        self.gw.start()
        self.gw.wait_output("INFO mqtt_source: subscribed topics=2 sensors=3", 15)
        self.probe("the first reading")
        self.start = self.col.mark()

    def probe(self, what):
        """Publish a door-3 reading until one comes through. Clean sessions: a message
        published before the broker has the gateway's SUBSCRIBE is lost, and the log line
        says only that the SUBSCRIBE was queued."""
        def attempt():
            mark = self.col.mark()
            self.col.publish("zigbee2mqtt/door-3", json.dumps({"contact": True, "battery": 1}))
            try:
                return self.telemetry("door-3", lambda o: o["values"]["battery"] == 1, what,
                                      since=mark, timeout=1)
            except AssertionError:
                return None
        wait_for(attempt, 35, what)

    def telemetry(self, sensor, pred, what, since=None, timeout=10):
        return self.col.wait_json(f"{PREFIX}/telemetry/{sensor}",
                                  lambda t, o: t == f"{PREFIX}/telemetry/{sensor}" and pred(o),
                                  timeout, what, since=self.start if since is None else since)

    def alarm(self, key):
        topic = f"{PREFIX}/alarms/{key}"
        got = retained(self.broker.port, topic)
        return json.loads(got[topic]) if got.get(topic) else None


def test_json_and_chirpstack(wd):
    site = Site(wd)
    col = site.col
    m0 = metrics_now(site.gw, col)

    # Zigbee2MQTT: contact false = the door is open
    col.publish("zigbee2mqtt/door-3", json.dumps(
        {"contact": False, "battery": 87, "sensors": {"t": 215}, "linkquality": 120,
         "voltage": 2995}))
    t = site.telemetry("door-3", lambda o: o["values"].get("battery") == 87, "door-3 telemetry")
    assert t["sensor"] == "door-3" and t["kind"] == "exit_door", t
    assert t["values"] == {"state": "open", "battery": 87, "temperature": 21.5}, t
    assert "rssi" not in t and "faults" not in t, t
    a = wait_for(lambda: site.alarm("door-3/exit-door-open"), 10, "the door alarm")
    assert a["state"] == "unacked" and a["class"] == "supervisory", a
    h = wait_for(lambda: json.loads(retained(site.broker.port, f"{PREFIX}/health/door-3")
                                    .get(f"{PREFIX}/health/door-3", b"null")), 10, "door health")
    assert h["online"] is True and h["battery"] == 87, h

    # ChirpStack, decoded by ChirpStack: values from `object`, signal from rxInfo
    col.publish(up_topic(EUI_OBJ), chirpstack_up(EUI_OBJ, 41, obj={"smoke": True, "battery": 95},
                                                 rx=((-97, 4.5), (-60, -2.0), (-110, 9.25))))
    t = site.telemetry("smoke-obj", lambda o: True, "smoke-obj telemetry")
    assert t["values"] == {"smoke": True, "battery": 95}, t
    assert t["rssi"] == -60 and t["snr"] == 9.25, t
    a = wait_for(lambda: site.alarm("smoke-obj/smoke-detected"), 10, "the smoke-obj alarm")
    assert a["class"] == "alarm" and a["state"] == "unacked" and a["value"] is True, a

    # ChirpStack raw data: 0x01 = smoke, 0x5A = battery 90 %, decoded by the layout here
    col.publish(up_topic(EUI_RAW), chirpstack_up(EUI_RAW, 7, data=[0x01, 0x5A]))
    t = site.telemetry("smoke-raw", lambda o: True, "smoke-raw telemetry")
    assert t["values"] == {"smoke": True, "battery": 90}, t
    assert t["rssi"] == -60 and t["snr"] == 4.5, t
    wait_for(lambda: site.alarm("smoke-raw/smoke-detected"), 10, "the smoke-raw alarm")

    # the door closes: the value follows and the alarm clears (its retained record goes)
    mark = col.mark()
    col.publish("zigbee2mqtt/door-3", json.dumps({"contact": True, "battery": 86}))
    t = site.telemetry("door-3", lambda o: True, "door-3 closed", since=mark)
    assert t["values"] == {"state": "closed", "battery": 86}, t
    assert t["faults"] == {"temperature": "invalid"}, t  # no sensors.t this time
    ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == "door-3/exit-door-open",
                       10, "the door alarm clearing", since=mark)
    assert ev["transition"] == "clear" and ev["state"] == "rtn_unacked", ev
    # Cleared but never acknowledged: it stays until someone does (ISA-18.2).
    col.publish(f"{PREFIX}/cmd/ack", json.dumps({"key": "door-3/exit-door-open", "by": "t"}))
    wait_for(lambda: site.alarm("door-3/exit-door-open") is None, 10, "the retained alarm gone")

    # another device of the ChirpStack application, and a join event: not ours, no telemetry
    mark = col.mark()
    col.publish(up_topic(EUI_STRANGER), chirpstack_up(EUI_STRANGER, 1, data=[1, 1]))
    col.publish(up_topic(EUI_RAW, "join"), json.dumps({"deviceInfo": {"devEui": EUI_RAW},
                                                        "devAddr": "00189441"}))
    col.publish(up_topic(EUI_RAW), chirpstack_up(EUI_RAW, 8, data=[0x00, 0x59]))
    t = site.telemetry("smoke-raw", lambda o: True, "smoke-raw clear", since=mark)
    assert t["values"] == {"smoke": False, "battery": 89}, t
    assert [m for m in col.since(mark, f"{PREFIX}/telemetry/") if "05ff" in m[0]] == []
    m1 = metrics_now(site.gw, col)
    m = {k: v - m0[k] for k, v in m1.items() if k.startswith("mqtt_source")}
    log(f"metrics (this test): {m}")
    assert m["mqtt_source_readings"] == 5, m
    assert m["mqtt_source_rejected"] == 0, m
    assert m["mqtt_source_ignored"] == 1, m  # the stranger; the join event is not subscribed
    assert m["mqtt_source_messages"] == 6, m
    assert m1["mqtt_source_connected"] == 1, m1


def test_garbage_counted(wd):
    site = Site(wd)
    col = site.col
    m0 = metrics_now(site.gw, col)
    log_at = len(site.gw.output())
    garbage = [
        ("zigbee2mqtt/door-3", b"contact=false"),
        ("zigbee2mqtt/door-3", b"[1, 2, 3]"),
        ("zigbee2mqtt/door-3", b""),
        ("zigbee2mqtt/door-3", b"\xff\xfe\x00\x01" * 100),
        ("zigbee2mqtt/door-3", b"{" * 5000 + b"}" * 5000),
        ("zigbee2mqtt/door-3", b'{"a":' + b"[" * 20000 + b"]" * 20000 + b"}"),
        ("zigbee2mqtt/door-3", b'{"contact": ' + b"9" * 400 + b"}"),
        ("zigbee2mqtt/door-3", b" " * (70 * 1024)),  # over the 64 KiB limit
        (up_topic(EUI_RAW), b"\x08\x01\x12\x10protobuf-marshaler"),
        (up_topic(EUI_RAW), json.dumps({"deviceInfo": {"devEui": EUI_RAW}, "fPort": 1,
                                        "data": "not base64!"}).encode()),
        (up_topic(EUI_OBJ), chirpstack_up(EUI_OBJ, 3, data=[1, 2]).encode()),  # no object
    ]
    for topic, payload in garbage:
        col.publish(topic, payload)
    # a good message after the garbage still comes through, in order
    col.publish("zigbee2mqtt/door-3", json.dumps({"contact": True, "battery": 50,
                                                  "sensors": {"t": "hot"}}))
    t = site.telemetry("door-3", lambda o: o["values"].get("battery") == 50,
                       "door-3 after the garbage")
    assert t["values"] == {"state": "closed", "battery": 50}, t
    assert t["faults"] == {"temperature": "invalid"}, t
    m1 = metrics_now(site.gw, col)
    log(f"rejected {m1['mqtt_source_rejected'] - m0['mqtt_source_rejected']} of "
        f"{len(garbage)} garbage messages")
    assert m1["mqtt_source_rejected"] - m0["mqtt_source_rejected"] == len(garbage), (m0, m1)
    assert m1["mqtt_source_messages"] - m0["mqtt_source_messages"] == len(garbage) + 1, (m0, m1)
    assert m1["mqtt_source_readings"] - m0["mqtt_source_readings"] == 1, (m0, m1)
    assert site.gw.alive()
    # logged with the sensor and topic, once and then spaced: not one line per message
    out = site.gw.output()[log_at:]
    assert "WARN mqtt_source: sensor door-3: message rejected topic=zigbee2mqtt/door-3" in out, out
    assert out.count("sensor door-3: message rejected") < 8, out
    assert "sensor smoke-obj: message rejected" in out and "no decoded object" in out, out
    assert "subscription=application/+/device/+/event/up" in out, out  # protobuf: whose?
    assert "sensor smoke-raw: message rejected" in out and "not valid base64" in out, out
    assert "INFO mqtt_source: sensor door-3: messages readable again" in out, out


def test_hub_restart_and_reload(wd):
    site = Site(wd)
    col = site.col
    col.publish("zigbee2mqtt/door-3", json.dumps({"contact": True, "battery": 80}))
    site.telemetry("door-3", lambda o: o["values"]["battery"] == 80, "before the restart")
    col.close()

    log_at = len(site.gw.output())
    assert site.broker.stop() == 0
    site.gw.wait_output("hub-src broker unreachable", 10, start=log_at)
    broker2 = Mosquitto(wd, port=site.broker.port).start()  # persistence off: no sessions kept
    site.broker = broker2
    site.gw.wait_output("hub-src broker reachable again", 35, start=log_at)
    site.gw.wait_output("INFO mqtt_source: subscribed topics=2", 10, start=log_at)
    site.col = col = Collector(broker2.port, f"{PREFIX}/#")
    site.start = 0
    site.probe("a reading after the restart")
    col.publish(up_topic(EUI_RAW), chirpstack_up(EUI_RAW, 9, data=[0, 77]))
    site.telemetry("smoke-raw", lambda o: o["values"]["battery"] == 77, "chirpstack after restart")

    # SIGHUP: the driver is rebuilt (a new connection with the same client id)
    log_at = len(site.gw.output())
    site.gw.reload()
    site.gw.wait_output("config reloaded", 10, start=log_at)
    site.gw.wait_output("INFO mqtt_source: subscribed topics=2", 10, start=log_at)
    site.probe("a reading after the reload")
    mark = col.mark()
    col.publish("zigbee2mqtt/door-3", json.dumps({"contact": False, "battery": 78}))
    col.publish("zigbee2mqtt/door-3", json.dumps({"contact": False, "battery": 77}))
    t = site.telemetry("door-3", lambda o: o["values"]["battery"] == 77, "after the reload",
                       since=mark)
    assert t["values"]["state"] == "open", t
    # one reading per message: the old connection is gone, nothing is subscribed twice
    got = [o["values"]["battery"] for _, o, _, _ in col.json_since(mark, f"{PREFIX}/telemetry/door-3")]
    assert got == [78, 77], got
    assert site.gw.output().count("INFO gateway: started") == 1, "the gateway restarted"


if __name__ == "__main__":
    run([test_json_and_chirpstack, test_garbage_counted, test_hub_restart_and_reload])
