#!/usr/bin/python3
"""The status page in headless Chromium (page.spec.js, playwright-core with Debian's chromium)
against a running gateway: log in, sensors with the offline one highlighted, an alarm that
appears live, acknowledged with a note on the page and on the retained P/alarms record, a
hazard recorded on the page, fixed, closed and its history shown (checked on the retained
P/hazards record), the daily log downloads, the language switch, a viewer without action
buttons whose action the API refuses, and the register-invalid error after hazard_log was
edited behind the gateway's back. Screenshots at 390x844 and 1280x800 are kept in the test's
temp dir (their paths are printed)."""

import json
import os
import queue
import shutil
import sqlite3
import struct
import subprocess
import threading
import time

from harness import (BUILD_DIR, PREFIX, Collector, Gateway, Mosquitto, free_port, log, retained,
                     run, site_config, wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = "/usr/bin/chromium"
KEY = "smoke-301/smoke-detected"
PAGE_TIMEOUT_S = 120


def hash_secret(secret):
    out = subprocess.run([f"{BUILD_DIR}/campusgw", "--hash-password"], input=secret.encode(),
                         capture_output=True, check=True, timeout=60)
    return out.stdout.decode().strip()


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def check_tools():
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (Debian package chromium: scripts/packages.txt)")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")):
        missing.append("tests/integration/node_modules/playwright-core (scripts/lib.sh gw_install_npm)")
    if not shutil.which("node"):
        missing.append("node")
    assert not missing, "the page test needs: " + "; ".join(missing)


class PageScript:
    """page.spec.js in node: its STEP lines are answered with GO once Python did its part."""

    def __init__(self, env):
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "page.spec.js")], cwd=HERE,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.output = []
        self.screenshots = []
        threading.Thread(target=self._read, daemon=True).start()
        self.deadline = time.monotonic() + PAGE_TIMEOUT_S

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_step(self):
        """The next STEP name, None when the script ended (DONE), or an AssertionError."""
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, self.deadline - time.monotonic()))
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"page.spec.js timed out after {PAGE_TIMEOUT_S}s:\n" +
                                     "\n".join(self.output[-30:]))
            if line is None:
                rc = self.proc.wait(timeout=10)
                raise AssertionError(f"page.spec.js ended (exit {rc}) without DONE:\n" +
                                     "\n".join(self.output[-30:]))
            self.output.append(line)
            print(f"  page: {line}", flush=True)
            if line.startswith("STEP "):
                return line[5:]
            if line.startswith("SCREENSHOT "):
                self.screenshots.append(line[11:])
            elif line == "DONE":
                assert self.proc.wait(timeout=10) == 0
                return None
            elif line.startswith("ERROR "):
                self.proc.wait(timeout=10)
                raise AssertionError("page.spec.js: " + line[6:])

    def answer(self, text="GO"):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


SENSORS = '''
profiles = {
  smoke = { codec = "json"; values = (
    { name = "state"; path = "state"; },
    { name = "battery"; path = "battery"; type = "number"; unit = "%"; } ); };
  temp = { codec = "json"; values = (
    { name = "temp"; path = "temp"; type = "number"; unit = "°C"; },
    { name = "battery"; path = "battery"; type = "number"; unit = "%"; } ); };
  door = { codec = "json"; values = ( { name = "state"; path = "state"; } ); };
};
sensors = (
  { id = "smoke-301"; kind = "smoke"; profile = "smoke"; expect_every_s = 3600;
    mqtt = { topic = "bridge/smoke-301"; };
    location = { building = "A"; floor = "3"; zone = "room 301"; }; },
  { id = "temp-2"; kind = "temperature"; profile = "temp"; expect_every_s = 3600;
    mqtt = { topic = "bridge/temp-2"; };
    location = { building = "B"; floor = "2"; zone = "lab 204"; }; },
  { id = "door-9"; kind = "exit_door"; profile = "door"; expect_every_s = 3600;
    mqtt = { topic = "bridge/door-9"; };
    location = { building = "B"; floor = "1"; zone = "west exit"; }; } );
rules = ( { name = "smoke detected"; kind = "smoke"; point = "state"; equals = "alarm";
            class = "alarm"; } );
'''


def start_site(wd, users, language="en"):
    """Broker and gateway; smoke-301 quiet with a full battery, temp-2 low on battery, door-9
    never heard from (offline)."""
    broker = Mosquitto(wd).start()
    port = free_port()
    body = f'http = {{ listen = "127.0.0.1:{port}"; {users} }};\n' + SENSORS
    config = site_config(f"{wd.path}/state", broker.port, body)
    config = config.replace('language = "en"', f'language = "{language}"')
    col = Collector(broker.port, f"{PREFIX}/#")
    gw = Gateway(wd, config).start()
    wait_for(lambda: "INFO http: listening" in gw.output(), 10, "the http server")
    # a message published before the sources subscribe is lost: wait for them
    wait_for(lambda: "INFO mqtt_source: subscribed" in gw.output(), 10, "the MQTT sources")
    mark = col.mark()
    col.publish("bridge/smoke-301", json.dumps({"state": "ok", "battery": 90}))
    col.publish("bridge/temp-2", json.dumps({"temp": 21.5, "battery": 15}))
    for s in ("smoke-301", "temp-2"):
        col.wait_json(f"{PREFIX}/telemetry/{s}", lambda t, o: True, 10, f"{s} telemetry",
                      since=mark)
    return broker, col, gw, port


def page_env(wd, port, **extra):
    shots = os.path.join(wd.path, "screenshots")
    os.makedirs(shots, exist_ok=True)
    return dict(os.environ, GW_PAGE_URL=f"http://127.0.0.1:{port}", GW_PAGE_OUT=shots,
                GW_ALARM_KEY=KEY, **extra)


def keep_screenshots(wd, page, expected):
    sizes = {os.path.basename(p): png_size(p) for p in page.screenshots}
    for name, size in expected.items():
        assert sizes.get(name) == size, (name, sizes)
    wd.keep = True  # the screenshots are the artifacts
    for p in page.screenshots:
        print(f"screenshot: {p}", flush=True)


def test_page(wd):
    check_tools()
    t0 = time.monotonic()
    users = f'''users = (
      {{ name = "wang"; role = "operator"; password_hash = "{hash_secret('op-secret-1')}"; }},
      {{ name = "zhao"; role = "viewer"; password_hash = "{hash_secret('viewer-secret-1')}"; }} );'''
    broker, col, gw, port = start_site(wd, users)
    page = PageScript(page_env(wd, port, GW_OPERATOR="wang", GW_OPERATOR_PASSWORD="op-secret-1",
                               GW_VIEWER="zhao", GW_VIEWER_PASSWORD="viewer-secret-1"))
    try:
        step = page.next_step()
        assert step == "page-open", step
        # The page is open on the alarms view: the smoke alarm must arrive over the stream.
        col.publish("bridge/smoke-301", json.dumps({"state": "alarm", "battery": 90}))
        page.answer()

        step = page.next_step()
        assert step == "acked", step
        # The page's ack went through the same path as an MQTT command: the retained record.
        topic = f"{PREFIX}/alarms/{KEY}"
        rec = json.loads(retained(broker.port, topic)[topic])
        assert rec["state"] == "acked" and rec["acked_by"] == "wang", rec
        assert rec["note"] == "checked room 301: toast", rec
        ev = col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == KEY and
                           o["transition"] == "ack", 5, "the ack on P/events")
        assert ev["by"] == "wang", ev
        page.answer()

        # The hazard recorded on the page is the gateway's, by the logged-in user.
        step = page.next_step()
        assert step.startswith("hazard-open HZ-"), step
        hid = step.split()[1]
        htopic = f"{PREFIX}/hazards/{hid}"
        hz = json.loads(retained(broker.port, htopic)[htopic])
        assert hz["status"] == "open" and hz["found_by"] == "wang", hz
        assert hz["category"] == "evacuation_route" and hz["zone"] == "west exit", hz
        assert hz["description"].startswith("Exit chained shut <img"), hz
        assert hz["responsible"] == "李工" and hz["deadline"], hz
        page.answer()

        step = page.next_step()
        assert step == f"hazard-closed {hid}", step
        hz = json.loads(retained(broker.port, htopic)[htopic])
        assert hz["status"] == "closed" and hz["verified_by"] == "zhao", hz
        assert hz["entries"] == 3, hz
        page.answer()

        # hazard_log edited while the gateway was down: it refuses the register.
        assert page.next_step() == "tamper"
        assert gw.stop() == 0
        con = sqlite3.connect(f"{wd.path}/state/state.db")
        con.execute("DROP TRIGGER hazard_log_no_update")
        con.execute("UPDATE hazard_log SET entry = replace(entry, 'zhao', 'qian')")
        con.commit()
        con.close()
        start = len(gw.output())
        gw.start()
        gw.wait_output("INFO http: listening", 10, start)
        page.answer()

        assert page.next_step() is None
    finally:
        page.kill()

    # The viewer's refused shelve changed nothing.
    rec = json.loads(retained(broker.port, topic)[topic])
    assert rec["state"] == "acked", rec
    # The screenshots: phone and desktop sizes, kept with the test's files.
    keep_screenshots(wd, page, {"phone-sensors-en.png": (390, 844),
                                "phone-alarms-zh.png": (390, 844),
                                "phone-hazard-history-en.png": (390, 844),
                                "phone-hazards-invalid-en.png": (390, 844),
                                "desktop-alarms-zh.png": (1280, 800),
                                "desktop-viewer-en.png": (1280, 800)})
    log(f"the page test took {time.monotonic() - t0:.1f} s")


def test_read_only(wd):
    """No users configured: read-only on loopback, said so, no login and no action buttons."""
    check_tools()
    broker, col, gw, port = start_site(wd, "", language="zh-CN")
    mark = col.mark()
    col.publish("bridge/smoke-301", json.dumps({"state": "alarm", "battery": 90}))
    col.wait_json(f"{PREFIX}/events", lambda t, o: o["key"] == KEY, 10, "the raise", since=mark)
    page = PageScript(page_env(wd, port, GW_PAGE_MODE="readonly"))
    try:
        assert page.next_step() == "stop-gateway"
        assert gw.stop() == 0
        page.answer()
        assert page.next_step() == "start-gateway"
        start = len(gw.output())
        gw.start()
        gw.wait_output("INFO http: listening", 10, start)
        page.answer()
        assert page.next_step() is None
    finally:
        page.kill()
    keep_screenshots(wd, page, {"phone-readonly-zh.png": (390, 844)})


if __name__ == "__main__":
    run([test_page, test_read_only])
