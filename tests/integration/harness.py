"""Integration harness: real mosquitto, Modbus slaves and the gateway on free
loopback ports in a temp dir; wait-for with deadlines, never fixed sleeps.

Run a scenario file directly with /usr/bin/python3 (Debian's paho-mqtt and
pymodbus live there). GW_BUILD_DIR and GW_SOURCE_DIR come from ctest.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

BUILD_DIR = os.environ.get("GW_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build/test"))
SOURCE_DIR = os.environ.get("GW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
PYTHON = "/usr/bin/python3"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.05):
    """Poll predicate until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Workdir:
    def __init__(self, name):
        self.path = tempfile.mkdtemp(prefix=f"gw-{name}-")
        self.keep = False
        self.procs = []

    def file(self, name, text=None):
        p = os.path.join(self.path, name)
        if text is not None:
            with open(p, "w") as f:
                f.write(text)
        return p

    def cleanup(self):
        for p in self.procs:
            p.kill()
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


class Process:
    """A child process with its output in a log file."""

    def __init__(self, name, argv, workdir, env=None):
        self.name = name
        self.argv = argv
        self.log_path = workdir.file(f"{name}.log")
        self.env = env
        self.proc = None
        workdir.procs.append(self)

    def start(self):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=self.env, start_new_session=True)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} did not stop within {timeout}s after signal {sig}")
        self.logf.close()
        return self.proc.returncode

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()
            self.logf.close()

    def restart(self):
        self.stop()
        return self.start()

    def output(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_output(self, text, timeout, start=0):
        return wait_for(lambda: text in self.output()[start:], timeout,
                        f"{self.name} to print {text!r}")


class Mosquitto(Process):
    def __init__(self, workdir, port=None, name="mosquitto", persistence=False, extra_conf=""):
        self.port = port or free_port()
        # name: a second broker in the same workdir gets its own config and log.
        # persistence: retained messages and persistent sessions (clean_session false
        # subscribers and their queued QoS 1 messages) survive a stop/start.
        pers = "persistence false\n"
        if persistence:
            pdir = os.path.join(workdir.path, f"{name}.db") + "/"
            os.makedirs(pdir, exist_ok=True)
            pers = f"persistence true\npersistence_location {pdir}\nautosave_interval 1\n"
        conf = workdir.file(f"{name}.conf",
                            f"listener {self.port} 127.0.0.1\n"
                            "allow_anonymous true\n"
                            + pers +
                            # the default 1000 silently drops messages to a slow subscriber
                            "max_queued_messages 1000000\n"
                            + extra_conf
                            + ("user root\n" if os.geteuid() == 0 else ""))
        super().__init__(name, ["mosquitto", "-c", conf], workdir)

    def start(self):
        super().start()
        wait_for(lambda: port_open(self.port), 10, f"mosquitto on port {self.port}")
        return self


class Collector:
    """Subscribes to a topic filter and keeps every message (topic, payload, retain)."""

    def __init__(self, port, topic="#", client_id=None, clean_session=True):
        """client_id + clean_session=False: a persistent session, so the broker queues
        QoS 1 messages for it while it is disconnected (and, with persistence, over a
        broker restart)."""
        self.messages = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.connects = 0
        self.client = mqtt.Client(client_id=client_id or f"collector-{os.getpid()}-{id(self)}",
                                  clean_session=clean_session)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.topic = topic
        self.port = port
        self.client.reconnect_delay_set(0.1, 1)
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        wait_for(self.connected.is_set, 10, "collector to connect")

    def _on_connect(self, client, userdata, flags, rc):
        client.subscribe(self.topic, qos=1)
        self.connects += 1
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload, msg.retain, time.monotonic()))

    def all(self, topic_prefix=""):
        with self.lock:
            return [m for m in self.messages if m[0].startswith(topic_prefix)]

    def json(self, topic_prefix=""):
        out = []
        for topic, payload, retain, t in self.all(topic_prefix):
            out.append((topic, json.loads(payload) if payload else None, retain, t))
        return out

    def wait_json(self, topic_prefix, predicate, timeout, what, since=0):
        """The first JSON message under topic_prefix (after mark `since`) that predicate accepts."""
        def find():
            for topic, obj, retain, t in self.json_since(since, topic_prefix):
                if obj is not None and predicate(topic, obj):
                    return obj
            return None
        return wait_for(find, timeout, what)

    def json_since(self, mark, topic_prefix=""):
        return [(topic, json.loads(payload) if payload else None, retain, t)
                for topic, payload, retain, t in self.since(mark, topic_prefix)]

    def mark(self):
        with self.lock:
            return len(self.messages)

    def since(self, mark, topic_prefix=""):
        with self.lock:
            return [m for m in self.messages[mark:] if m[0].startswith(topic_prefix)]

    def publish(self, topic, payload, qos=1, retain=False):
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish()

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def retained(port, topic, timeout=5):
    """The retained messages under topic right now, as {topic: payload bytes}."""
    got = {}
    done = threading.Event()
    c = mqtt.Client(client_id=f"retained-{os.getpid()}-{time.monotonic_ns()}")

    def on_message(client, userdata, msg):
        if msg.retain:
            got[msg.topic] = msg.payload

    c.on_message = on_message
    c.on_connect = lambda client, u, f, rc: client.subscribe(topic, qos=1)
    c.connect("127.0.0.1", port)
    c.loop_start()
    # Retained messages arrive right after SUBACK; wait until the flow stops.
    last = -1
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if len(got) == last:
            break
        last = len(got)
    c.loop_stop()
    c.disconnect()
    return got


class Gateway(Process):
    def __init__(self, workdir, config_text, name="campusgw"):
        self.config_path = workdir.file(f"{name}.cfg", config_text)
        exe = os.path.join(BUILD_DIR, "campusgw")
        super().__init__(name, [exe, "-c", self.config_path], workdir)

    def start(self, wait_text="INFO gateway: started"):
        # The log is appended across restarts: wait for the text from this start on.
        pos = len(self.output())
        super().start()
        self.wait_output(wait_text, 15, start=pos)
        return self

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)


class Sim(Process):
    def __init__(self, workdir, scenario_text, port=None, extra=()):
        self.port = port or free_port()
        path = workdir.file("scenario.cfg", scenario_text)
        exe = os.path.join(BUILD_DIR, "campusgw-sim")
        super().__init__("sim", [exe, "-c", path, "--listen", f"127.0.0.1:{self.port}", *extra],
                         workdir)

    def start(self):
        super().start()
        wait_for(lambda: port_open(self.port), 10, f"campusgw-sim on port {self.port}")
        return self


class ModbusSlave(Process):
    """tests/integration/modbus_slave.py: a pymodbus slave driven by commands on its stdin.

    spec: {unit: {"holding": {addr: value} or [values], "input": ..., "coils": ..., "discrete": ...}}.
    Either tcp (a free loopback port is picked when port is None) or rtu=PATH.
    """

    def __init__(self, workdir, spec, port=None, rtu=None, baud=9600, name="slave"):
        self.port = None if rtu else (port or free_port())
        spec_path = workdir.file(f"{name}.json", json.dumps({str(u): t for u, t in spec.items()}))
        argv = [PYTHON, "-u", os.path.join(os.path.dirname(os.path.abspath(__file__)), "modbus_slave.py"),
                "--spec", "@" + spec_path]
        argv += ["--rtu", rtu, "--baud", str(baud)] if rtu else ["--tcp", f"127.0.0.1:{self.port}"]
        super().__init__(name, argv, workdir)
        self.ncommands = 0
        # command() may be called from several threads (a flipper thread and the test)
        self.lock = threading.RLock()

    def start(self):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_output("ready", 15)
        return self

    def command(self, line, timeout=5):
        """Send one command and wait until the slave has applied it."""
        with self.lock:
            # Only look at what the slave printed after this command: the log grows long.
            pos = os.path.getsize(self.log_path)
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
            self.ncommands += 1
            n = self.ncommands

            def since():
                with open(self.log_path, "rb") as f:
                    f.seek(pos)
                    return f.read().decode(errors="replace")

            wait_for(lambda: f"done {n}\n" in since() or f"error {n}:" in since(),
                     timeout, f"slave to run {line!r}", interval=0.005)
            out = since()
            if f"error {n}:" in out:
                raise AssertionError(f"slave refused {line!r}: {out[-300:]}")
            return out

    def set(self, unit, table, addr, *values):
        self.command(f"set {unit} {table} {addr} " + " ".join(str(int(v)) for v in values))

    def reads(self, unit):
        """Every read request the unit got so far: [[function, address, count], ...]."""
        with self.lock:
            for line in reversed(self.command(f"requests {unit}").splitlines()):
                if line.startswith(f"requests {unit} "):
                    return json.loads(line.split(" ", 2)[2])
        raise AssertionError("no requests line from the slave")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.alive():
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        return super().stop(sig, timeout)


def words_u32(v, word_order="big"):
    """A 32-bit value as two registers in the given word order."""
    v &= 0xFFFFFFFF
    hi, lo = v >> 16, v & 0xFFFF
    return [hi, lo] if word_order == "big" else [lo, hi]


def words_f32(x, word_order="big"):
    import struct
    return words_u32(struct.unpack(">I", struct.pack(">f", x))[0], word_order)


class SerialPair(Process):
    """socat pty pair: DIR/ttyGW for the gateway, DIR/ttySLAVE for the slave."""

    def __init__(self, workdir):
        self.gw = workdir.file("ttyGW")
        self.slave = workdir.file("ttySLAVE")
        super().__init__("socat", ["socat", "-d", "-d", f"pty,raw,echo=0,link={self.gw}",
                                   f"pty,raw,echo=0,link={self.slave}"], workdir)

    def start(self):
        super().start()
        wait_for(lambda: os.path.exists(self.gw) and os.path.exists(self.slave)
                 and "starting data transfer loop" in self.output(), 10, "socat ptys")
        return self


class TcpProxy:
    """A loopback TCP forwarder in front of a server, to cut one client off it.

    mode "pass" forwards new connections both ways; "refuse" closes them at
    once (the server looks down to the client while others, connected
    directly, still reach it). A mode applies to connections accepted after
    it is set; close_all() drops the current ones.
    """

    def __init__(self, target_port, port=None):
        self.target_port = target_port
        self.mode = "pass"
        self.accepted = 0
        self.lock = threading.Lock()
        self.conns = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port or 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(16)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode != "pass":
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close_all(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def close(self):
        self.closed = True
        self.sock.close()
        self.close_all()


def telemetry_values(collector, prefix, sensor):
    """The telemetry payloads of one sensor received so far, oldest first."""
    topic = f"{prefix}/telemetry/{sensor}"
    return [obj for t, obj, _, _ in collector.json(topic) if obj and t == topic]


def log_count(process, text):
    return process.output().count(text)


def site_config(state_dir, hub_port, body, school="test-school"):
    """A config with the usual site/hub header and the given sections."""
    return (
        f'site = {{ district = "testdist"; school = "{school}"; name = "Test School"; '
        f'timezone = "UTC"; language = "en"; }};\n'
        f'state_dir = "{state_dir}";\n'
        f'hub = {{ host = "127.0.0.1"; port = {hub_port}; topic_prefix = "campus"; }};\n'
        + body)


PREFIX = "campus/testdist/test-school"


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def check_sanitizers(wd):
    """Stop our C programs the normal way (so LeakSanitizer runs) and look for reports."""
    for p in wd.procs:
        if isinstance(p, (Gateway, Sim)) and p.alive():
            rc = p.stop()
            if rc != 0:
                raise AssertionError(f"{p.name} exited {rc} on SIGTERM")
    for p in wd.procs:
        if isinstance(p, (Gateway, Sim)):
            out = p.output()
            for mark in SANITIZER_MARKS:
                if mark in out:
                    raise AssertionError(f"{p.name}: sanitizer report ({mark})")


def run(tests):
    """Run the scenario functions; each gets a fresh Workdir. Exit non-zero on failure."""
    failed = 0
    for fn in tests:
        wd = Workdir(fn.__name__)
        log(f"--- {fn.__name__}")
        try:
            fn(wd)
            check_sanitizers(wd)
            log(f"PASS {fn.__name__}")
        except Exception as e:  # noqa: BLE001 - report every failure with the logs
            failed += 1
            wd.keep = True
            log(f"FAIL {fn.__name__}: {e!r} (files kept in {wd.path})")
            for name in sorted(os.listdir(wd.path)):
                if name.endswith(".log"):
                    with open(os.path.join(wd.path, name), errors="replace") as f:
                        tail = f.read()[-4000:]
                    print(f"----- {name} (tail)\n{tail}", flush=True)
        finally:
            wd.cleanup()
    print(f"{len(tests) - failed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)


class Influxd(Process):
    """A real InfluxDB 1.x (Debian's influxd) on free loopback ports in the workdir.

    Both listeners are moved to free loopback ports: the HTTP API and the RPC
    service behind the top-level bind-address (8088 by default, which would
    clash with any other influxd on the machine). restart() keeps the ports and
    the data. With auth=(user, password) the server requires credentials and
    that user is created as admin on first start.
    """

    def __init__(self, workdir, port=None, rpc_port=None, auth=None, name="influxd"):
        self.port = port or free_port()
        self.rpc_port = rpc_port or free_port()
        self.auth = auth
        self.url = f"http://127.0.0.1:{self.port}"
        base = os.path.join(workdir.path, name)
        for sub in ("meta", "data", "wal"):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        conf = workdir.file(f"{name}.conf",
                            "reporting-disabled = true\n"
                            f'bind-address = "127.0.0.1:{self.rpc_port}"\n'
                            "[meta]\n"
                            f'  dir = "{base}/meta"\n'
                            "  logging-enabled = false\n"
                            "[data]\n"
                            f'  dir = "{base}/data"\n'
                            f'  wal-dir = "{base}/wal"\n'
                            "  query-log-enabled = false\n"
                            "  trace-logging-enabled = false\n"
                            "[monitor]\n"
                            "  store-enabled = false\n"
                            "[http]\n"
                            f'  bind-address = "127.0.0.1:{self.port}"\n'
                            f"  auth-enabled = {'true' if auth else 'false'}\n"
                            "  log-enabled = false\n"
                            "  pprof-enabled = false\n"
                            "[logging]\n"
                            '  level = "warn"\n'
                            "  suppress-logo = true\n"
                            "[continuous_queries]\n"
                            "  enabled = false\n")
        super().__init__(name, ["influxd", "run", "-config", conf], workdir)
        self._created_user = False

    def _request(self, method, path, params=None, data=None, auth=True):
        import base64
        import urllib.error
        import urllib.parse
        import urllib.request
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        req = urllib.request.Request(url, data=data, method=method)
        if auth and self.auth:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            req.add_header("Authorization", "Basic " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def ping(self):
        try:
            return self._request("GET", "/ping", auth=False)[0] == 204
        except OSError:
            return False

    def start(self, timeout=30):
        super().start()
        wait_for(lambda: self.ping() or not self.alive(), timeout, f"influxd /ping on {self.port}")
        if not self.alive():
            raise AssertionError(f"influxd exited: {self.output()[-2000:]}")
        if self.auth and not self._created_user:
            # With no user yet, influxd accepts exactly this statement without credentials.
            user, password = self.auth
            status, body = self._request(
                "POST", "/query",
                {"q": f"CREATE USER \"{user}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES"},
                auth=False)
            if status != 200:
                raise AssertionError(f"influxd create user: {status} {body!r}")
            self._created_user = True
        return self

    def query(self, q, db=None, epoch="ns"):
        """Run an InfluxQL statement; the parsed JSON reply. Raises on an error reply."""
        params = {"q": q, "epoch": epoch}
        if db:
            params["db"] = db
        method = "GET" if q.lstrip().upper().startswith(("SELECT", "SHOW")) else "POST"
        status, body = self._request(method, "/query", params)
        obj = json.loads(body) if body else {}
        if status != 200:
            raise AssertionError(f"influxd query {q!r}: HTTP {status} {body!r}")
        for res in obj.get("results", []):
            if "error" in res:
                raise AssertionError(f"influxd query {q!r}: {res['error']}")
        return obj

    def points(self, q, db):
        """The rows of a SELECT as a list of dicts (column -> value), all series together."""
        rows = []
        for res in self.query(q, db).get("results", []):
            for series in res.get("series", []):
                tags = series.get("tags", {})
                for values in series.get("values", []):
                    row = dict(zip(series["columns"], values))
                    row.update(tags)
                    row["_measurement"] = series.get("name")
                    rows.append(row)
        return rows

    def count(self, measurement, db, field="*"):
        """How many points a measurement holds (0 when it does not exist)."""
        total = 0
        for row in self.points(f'SELECT COUNT({field}) FROM "{measurement}"', db):
            total = max(total, max((v for k, v in row.items()
                                    if k.startswith("count") and isinstance(v, int)), default=0))
        return total

    def create_database(self, name):
        self.query(f'CREATE DATABASE "{name}"')

    def write(self, lines, db, precision="ns"):
        """POST line protocol directly; (status, body bytes)."""
        return self._request("POST", "/write", {"db": db, "precision": precision},
                             data=lines.encode() if isinstance(lines, str) else lines)


def state_db_rows(state_dir, sql, params=()):
    """Rows of a query on state_dir/state.db, opened read-only next to the running
    gateway (WAL lets a reader in while it writes)."""
    import sqlite3
    path = os.path.join(state_dir, "state.db")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def sim_hydrants(wd, n, bus="plc", interval_s=1, noise=0.05):
    """campusgw-sim serving n noisy hydrants h1..hn (a new value at every poll), started,
    and the gateway config pieces for them: (sim, bus, profiles, sensors, ids), where
    bus is one element of `modbus`, profiles one member of `profiles` and sensors the
    elements of `sensors` (join them with yours)."""
    devices = ",\n".join(
        f'  {{ name = "h{i}"; unit_id = {i}; type = "hydrant_4_20"; pressure = 0.4; '
        f'noise = {noise}; }}' for i in range(1, n + 1))
    sim = Sim(wd, f"devices = (\n{devices}\n);\n").start()
    bus_cfg = f'{{ name = "{bus}"; tcp = "127.0.0.1:{sim.port}"; timeout_ms = 500; }}'
    profile = ('hydrant_4_20 = { points = ( { name = "pressure"; unit = "MPa"; address = 0; '
               'type = "u16"; raw_min = 4000; raw_max = 20000; min = 0.0; max = 1.6; } ); };')
    sensors = ",\n".join(
        f'  {{ id = "h{i}"; kind = "hydrant_pressure"; profile = "hydrant_4_20"; modbus = "{bus}"; '
        f'unit_id = {i}; interval_s = {interval_s}; '
        f'location = {{ building = "B{i % 3}"; floor = "{i}"; }}; }}'
        for i in range(1, n + 1))
    return sim, bus_cfg, profile, sensors, [f"h{i}" for i in range(1, n + 1)]


def lora_frames(specs):
    """LoRaWAN 1.0 data-up PHYPayloads (bytes) built by the npm package lora-packet
    (tests/integration/lora_frames.js), an encoder independent of ours. specs: dicts
    with dev_addr, nwk_s_key, app_s_key (hex), fcnt (32-bit), fport (default 1),
    payload (plain, bytes or hex), confirmed."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ)
    env["NODE_PATH"] = os.path.join(SOURCE_DIR, "tests/unit/node_modules") + (
        os.pathsep + env["NODE_PATH"] if env.get("NODE_PATH") else "")
    specs = [dict(s, payload=s["payload"].hex() if isinstance(s.get("payload"), bytes)
                  else s.get("payload", "")) for s in specs]
    r = subprocess.run(["node", os.path.join(here, "lora_frames.js")], input=json.dumps(specs),
                       capture_output=True, text=True, env=env, timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"lora_frames.js failed ({r.returncode}): {r.stderr.strip()}")
    return [bytes.fromhex(h) for h in json.loads(r.stdout)]


class Forwarder:
    """A Semtech UDP packet forwarder (GWMP v1/v2) on a loopback socket, talking to
    the gateway's LoRa listener. push() and pull() return the acknowledgement the
    gateway sent for that datagram (matched by token), or None if none came in time."""

    PUSH_DATA, PUSH_ACK, PULL_DATA, PULL_ACK = 0x00, 0x01, 0x02, 0x04

    def __init__(self, port, eui, host="127.0.0.1"):
        self.addr = (host, port)
        self.eui = eui
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.token = int.from_bytes(os.urandom(2), "big")
        self.unexpected = []  # datagrams that were not the awaited ack
        self.tmst = 1000000

    @property
    def eui_hex(self):
        return f"{self.eui:016X}"

    def next_token(self):
        self.token = (self.token + 1) & 0xFFFF
        return self.token

    def header(self, version, ident, token=None):
        token = self.next_token() if token is None else token
        return bytes([version]) + token.to_bytes(2, "big") + bytes([ident]), token

    def send(self, data):
        self.sock.sendto(data, self.addr)

    def wait_ack(self, version, token, ident, timeout=3):
        """The datagram [version, token, ident] from the gateway, or None at the deadline."""
        deadline = time.monotonic() + timeout
        want = bytes([version]) + token.to_bytes(2, "big") + bytes([ident])
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                return None
            if data[:4] == want:
                return data
            self.unexpected.append(data)

    def rxpk(self, phy, rssi=-60.0, lsnr=7.5, stat=1, **extra):
        """One rxpk entry as a real forwarder writes it."""
        import base64
        self.tmst = (self.tmst + 1000) & 0xFFFFFFFF
        pk = {"time": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
              "tmst": self.tmst, "chan": 2, "rfch": 0, "freq": 470.7, "stat": stat,
              "modu": "LORA", "datr": "SF7BW125", "codr": "4/5", "rssi": rssi, "lsnr": lsnr,
              "size": len(phy), "data": base64.b64encode(phy).decode()}
        pk.update(extra)
        return pk

    def push_raw(self, body, version=2, ident=None, token=None, wait=True, timeout=3):
        """A PUSH_DATA with body (bytes) after the EUI; the ack or None."""
        ident = self.PUSH_DATA if ident is None else ident
        head, token = self.header(version, ident, token)
        self.send(head + self.eui.to_bytes(8, "big") + body)
        return self.wait_ack(version, token, self.PUSH_ACK, timeout) if wait else None

    def push(self, frames=(), rssi=-60.0, lsnr=7.5, version=2, stat=1, stat_report=None,
             rxpk=None, token=None, timeout=3):
        """PUSH_DATA carrying frames (PHYPayload bytes) as rxpk (or the given rxpk list),
        and a stat report if given (dict; time is filled in). Returns the PUSH_ACK."""
        obj = {}
        pks = list(rxpk) if rxpk is not None else [self.rxpk(f, rssi, lsnr, stat) for f in frames]
        if pks:
            obj["rxpk"] = pks
        if stat_report is not None:
            obj["stat"] = dict({"time": time.strftime("%Y-%m-%d %H:%M:%S GMT", time.gmtime())},
                               **stat_report)
        return self.push_raw(json.dumps(obj).encode(), version=version, token=token,
                             timeout=timeout)

    def pull(self, version=2, token=None, timeout=3):
        """PULL_DATA (keep-alive); returns the PULL_ACK."""
        head, token = self.header(version, self.PULL_DATA, token)
        self.send(head + self.eui.to_bytes(8, "big"))
        return self.wait_ack(version, token, self.PULL_ACK, timeout)

    def close(self):
        self.sock.close()


def metrics_now(gw, collector, timeout=10):
    """Ask the gateway for P/metrics at once (SIGUSR1) and return that payload."""
    mark = collector.mark()
    gw.proc.send_signal(signal.SIGUSR1)
    return collector.wait_json(f"{PREFIX}/metrics", lambda t, o: t == f"{PREFIX}/metrics", timeout,
                               "P/metrics after SIGUSR1", since=mark)


# ---- loopback HTTP and SMTP receivers for notifiers (webhooks, email) ----

class Receiver:
    """A loopback HTTP server that answers POSTs by path and keeps every request
    (path, monotonic time, headers, body). Paths: /ok, /fail500, /notfound, /hang
    (never answers until close), /flaky (503 once, then 200), /wecom-ok,
    /dingtalk-ok (robot replies with errcode 0), /wecom-bad (errcode 93000)."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.requests = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # ends the hanging requests at teardown
        self.flaky_count = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append((self.path, time.monotonic(), dict(self.headers),
                                              body))
                status, reply = receiver.answer(self.path)
                if status is None:
                    return
                data = reply.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path):
        if path == "/ok":
            return 200, "ok"
        if path == "/fail500":
            return 500, "internal error"
        if path == "/notfound":
            return 404, "no such hook"
        if path == "/hang":
            self.release.wait(60)  # far past any channel's timeout
            return None, None
        if path == "/flaky":
            with self.lock:
                self.flaky_count += 1
                first = self.flaky_count == 1
            return (503, "busy") if first else (200, "ok")
        if path in ("/wecom-ok", "/dingtalk-ok"):
            return 200, '{"errcode":0,"errmsg":"ok"}'
        if path == "/wecom-bad":
            return 200, '{"errcode":93000,"errmsg":"invalid webhook url"}'
        return 404, "unknown"

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def got(self, path):
        with self.lock:
            return [r for r in self.requests if r[0] == path]

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def make_cert(wd, name):
    """A self-signed certificate for localhost / 127.0.0.1: (cert path, key path)."""
    key, cert = wd.file(f"{name}.key"), wd.file(f"{name}.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


class Mailbox:
    """aiosmtpd handler: keeps every message; accepts the login gw / s3cret."""

    def __init__(self):
        self.messages = []  # (monotonic time, mail_from, rcpt_tos, bytes, over_tls)
        self.logins = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        tls = session.ssl is not None or \
            server.transport.get_extra_info("ssl_object") is not None
        with self.lock:
            self.messages.append((time.monotonic(), envelope.mail_from, list(envelope.rcpt_tos),
                                  envelope.content, tls))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        with self.lock:
            self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.login == b"gw" and auth_data.password == b"s3cret")


class Smtp:
    """aiosmtpd (Debian's python3-aiosmtpd) on a free port: mode starttls (required,
    AUTH required), smtps (implicit TLS), or plain (no STARTTLS offered)."""

    def __init__(self, cert, key, mode):
        import logging
        import ssl
        import warnings
        from aiosmtpd.controller import Controller
        # aiosmtpd logs a traceback for a refused handshake and warns about the smtps setup.
        logging.getLogger("mail.log").setLevel(logging.CRITICAL)
        warnings.filterwarnings("ignore", module="aiosmtpd")
        self.box = Mailbox()
        self.mode = mode
        self.port = free_port()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        kw = dict(hostname="127.0.0.1", port=self.port, authenticator=self.box.authenticate)
        if mode == "starttls":
            kw.update(tls_context=ctx, require_starttls=True, auth_required=True)
        elif mode == "smtps":
            # The whole session is TLS; aiosmtpd only counts STARTTLS as TLS for AUTH.
            kw.update(ssl_context=ctx, auth_required=True, auth_require_tls=False)
        else:
            kw.update(auth_required=False)
        self.controller = Controller(self.box, **kw)
        self.controller.start()

    def smtp_config(self, ca_file, sender="campusgw <gw@school.cn>"):
        """The gateway's smtp section for this server (login gw / s3cret)."""
        scheme = "smtps" if self.mode == "smtps" else "smtp"
        return (f'smtp = {{ url = "{scheme}://127.0.0.1:{self.port}"; username = "gw"; '
                f'password = "s3cret"; from = "{sender}"; ca_file = "{ca_file}"; }};\n')

    def close(self):
        self.controller.stop()
