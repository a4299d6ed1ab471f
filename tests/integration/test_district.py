#!/usr/bin/python3
"""The district stack: scripts/district-demo --once end to end (three schools through the
district broker's ACLs into influxd, every Grafana dashboard query answered), the ACL file
against the real mosquitto, the InfluxDB retention policies and continuous query, and the
deployment files (docker-compose.yml, Dockerfile, example school configs)."""

import json
import os
import re
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt

from harness import BUILD_DIR, SOURCE_DIR, Influxd, Process, free_port, log, port_open, run, wait_for

sys.path.insert(0, os.path.join(SOURCE_DIR, "scripts"))
import district_demo as dd  # noqa: E402  (scripts/ is not a package)

DISTRICT_DIR = os.path.join(SOURCE_DIR, "config", "district")
SCHOOLS = [s["id"] for s in dd.SCHOOLS]


def demo_cfg_sensors():
    """{sensor id: kind} of config/demo.cfg, which every demo school runs."""
    text = open(os.path.join(SOURCE_DIR, "config", "demo.cfg")).read()
    return dict(re.findall(r'\{ id = "([^"]+)"; kind = "([^"]+)";', text))


def only(results, panel, school=None):
    got = [r for r in results if r.get("panel") == panel
           and (school is None or r["vars"].get("school") == school)]
    assert len(got) == 1, f"{panel} {school}: {len(got)} results"
    return got[0]


def tags_of(result, key):
    return sorted(s.get("tags", {}).get(key) for s in result["series"])


def values_of(result, column):
    out = []
    for s in result["series"]:
        i = s["columns"].index(column)
        out += [v[i] for v in s["values"]]
    return out


# ---- the demo, once ----

def test_demo_once_missing_data(wd):
    """A deadline too short for any school's data: exit 1 naming each missing school, and
    nothing it started left running."""
    proc = subprocess.run([os.path.join(SOURCE_DIR, "scripts", "district-demo"), "--once",
                           "--bin", BUILD_DIR, "--timeout", "1"],
                          capture_output=True, text=True, timeout=120)
    err = proc.stdout + proc.stderr
    log(f"district-demo --once --timeout 1: exit {proc.returncode}")
    assert proc.returncode == 1, err[-3000:]
    assert "district demo FAILED" in err, err[-3000:]
    for school in (s["id"] for s in dd.SCHOOLS):
        assert re.search(rf"\b{re.escape(school)}: ", err), (school, err[-3000:])
    kept = re.search(r"files kept in (/tmp/gw-district-\S+)", err)
    assert kept, err[-3000:]
    tmp = kept.group(1)
    # every process of the stack had the temp dir in its command line: none is left
    left = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if tmp.encode() in f.read():
                        left.append(pid)
            except OSError:
                pass
    assert not left, f"still running after exit: {left}"
    subprocess.run(["rm", "-rf", tmp], check=True)


def test_demo_once(wd):
    out_json = wd.file("queries.json")
    t0 = time.monotonic()
    proc = subprocess.run([os.path.join(SOURCE_DIR, "scripts", "district-demo"), "--once",
                        "--bin", BUILD_DIR, "--timeout", "45", "--json", out_json],
                          capture_output=True, text=True, timeout=120)
    log(f"district-demo --once: exit {proc.returncode} after {time.monotonic() - t0:.1f} s")
    print(proc.stdout, flush=True)
    assert proc.returncode == 0, f"district-demo failed:\n{proc.stderr[-6000:]}"
    results = json.load(open(out_json))["queries"]
    sensors = demo_cfg_sensors()
    hydrants = sorted(s for s, k in sensors.items() if k == "hydrant_pressure")
    exits = sorted(s for s, k in sensors.items() if k == "exit_door")

    # Template variables: the district and its three schools.
    variables = {(x["dashboard"], x["variable"]): x["values"] for x in results if "variable" in x}
    assert variables[("campus-school-detail", "school")] == sorted(SCHOOLS), variables
    assert variables[("campus-school-detail", "district")] == ["haidian"], variables
    assert variables[("campus-district-overview", "district")] == ["haidian"], variables

    # The overview: one row per school from school_kpi, worst first.
    ov = only(results, "Schools, worst first")
    assert '"school_kpi"' in ov["template"], ov["template"]
    cols, rows = ov["table"]["columns"], ov["table"]["rows"]
    row = {x[cols.index("school")]: dict(zip(cols, x)) for x in rows}
    assert sorted(row) == sorted(SCHOOLS) and len(rows) == 3, rows
    issues = [x[cols.index("issues")] for x in rows]
    assert issues == sorted(issues, reverse=True), f"not worst first: {issues}"
    for sid, x in row.items():
        assert x["issues"] == (x["unacknowledged alarms"] + x["overdue hazards"]
                               + x["hydrants without pressure"] + x["exits locked"]), x
        assert x["sensors"] == len(sensors), x
        assert x["last report"], x
    # no2-primary starts with a dry hydrant and a locked exit, no3-high with a locked exit
    # (district_demo.SCHOOLS), and nobody acknowledges: both raised, both unacknowledged.
    assert row["no2-primary"]["hydrants without pressure"] == 1, row["no2-primary"]
    assert row["no2-primary"]["exits locked"] == 1, row["no2-primary"]
    assert row["no2-primary"]["unacknowledged alarms"] >= 2, row["no2-primary"]
    assert row["no3-high"]["exits locked"] == 1, row["no3-high"]
    assert row["no3-high"]["hydrants without pressure"] == 0, row["no3-high"]
    order = [x[cols.index("school")] for x in rows]
    assert order.index("no2-primary") < order.index("no3-high"), order
    # The printed table is that table, in that order.
    printed = [line.split()[0] for line in proc.stdout.splitlines()
               if line.strip() and line.split()[0] in SCHOOLS]
    assert printed == [x[cols.index("school")] for x in rows], (printed, proc.stdout)

    assert tags_of(only(results, "Issues per school"), "school") == sorted(SCHOOLS)
    gw = only(results, "Gateways")
    assert sorted(x[gw["table"]["columns"].index("school")] for x in gw["table"]["rows"]) == \
        sorted(SCHOOLS), gw["table"]

    for sid in SCHOOLS:
        hp = only(results, "Hydrant pressure", sid)
        assert tags_of(hp, "sensor") == hydrants, (sid, hp["series"])
        for s in hp["series"]:
            low = sid == "no2-primary" and s["tags"]["sensor"] == "A-1F-hydrant-01"
            # no1-middle plays the demo script: its hydrant-01 drops from 30 s on.
            scripted = sid == "no1-middle" and s["tags"]["sensor"] == "A-1F-hydrant-01"
            for _, v in s["values"]:
                assert (v < 0.1) if low else (0 <= v < 0.5) if scripted else (0.3 < v < 0.5), \
                    (sid, s)
        # The rollup, backfilled by the demo with the continuous query's own SELECT.
        hourly = only(results, "Hydrant pressure, hourly minimum (kept 5 years)", sid)
        assert tags_of(hourly, "sensor") == hydrants, (sid, hourly["series"])
        doors = only(results, "Door states", sid)
        assert set(exits) <= set(tags_of(doors, "sensor")), (sid, doors["series"])
        states = {s["tags"]["sensor"]: [v[1] for v in s["values"]] for s in doors["series"]}
        if sid in ("no2-primary", "no3-high"):  # locked from the start (no1-middle: at 50 s)
            assert set(states["B-1F-exit-main"]) == {"locked"}, (sid, states)
            assert set(states["A-1F-exit-east"]) == {"closed"}, (sid, states)
        health = only(results, "Sensor health", sid)
        assert set(hydrants + exits) <= set(tags_of(health, "sensor")), (sid, health["series"])
        hcols = health["table"]["columns"]
        for x in health["table"]["rows"]:
            if x[hcols.index("sensor")] in hydrants + exits:
                assert x[hcols.index("online")] is True, (sid, x)
        timeline = only(results, "Alarm timeline", sid)
        events = only(results, "Alarm events", sid)
        want = {k for s in dd.SCHOOLS if s["id"] == sid for k in s["alarms"]}
        got = {f'{s["tags"]["sensor"]}/{slug(s["tags"]["rule"])}' for s in timeline["series"]}
        assert want <= got, (sid, want, got)
        ev = {(x[events["table"]["columns"].index("sensor")],
               x[events["table"]["columns"].index("transition")]) for x in events["table"]["rows"]}
        assert {(k.split("/")[0], "raise") for k in want} <= ev, (sid, ev)

    # Every query of every dashboard file is one the demo ran (for every school where it
    # names $school), read here from the files themselves.
    ran = {}
    for x in results:
        ran.setdefault(x["template"], []).append(x)
    for name in sorted(os.listdir(dd.DASHBOARD_DIR)):
        d = json.load(open(os.path.join(dd.DASHBOARD_DIR, name)))
        queries = [t["query"] for _, t in dd.dashboard_queries(d)]
        queries += [v["query"] for v in d["templating"]["list"]]
        assert queries, name
        for q in queries:
            assert q in ran, f"{name}: query never run: {q}"
            if "$school" in q:
                assert sorted(x["vars"]["school"] for x in ran[q]) == sorted(SCHOOLS), q
        log(f"{name}: {len(queries)} queries, all run")


def slug(rule):
    return re.sub(r"[^a-z0-9]+", "-", rule.lower()).strip("-")


# ---- the dashboard files themselves ----

def test_dashboard_files(wd):
    ds = open(dd.DATASOURCE_FILE).read()
    uid = re.search(r"^\s*uid:\s*(\S+)", ds, re.M).group(1)
    provider = open(os.path.join(SOURCE_DIR, "config/grafana/provisioning/dashboards/campusgw.yaml")).read()
    assert "path: /etc/grafana/dashboards" in provider, provider
    compose = open(os.path.join(SOURCE_DIR, "docker-compose.yml")).read()
    assert "./config/grafana/dashboards:/etc/grafana/dashboards:ro" in compose
    uids = set()
    for name in sorted(os.listdir(dd.DASHBOARD_DIR)):
        with open(os.path.join(dd.DASHBOARD_DIR, name)) as f:
            d = json.load(f)  # valid JSON or the test fails here
        assert d["uid"] not in uids, d["uid"]
        uids.add(d["uid"])
        for panel, t in dd.dashboard_queries(d):
            assert t["datasource"] == {"type": "influxdb", "uid": uid}, (name, panel["title"])
            assert t.get("rawQuery") is True and t["resultFormat"] in ("table", "time_series"), t
            assert panel["datasource"]["uid"] == uid, panel["title"]
        for v in d["templating"]["list"]:
            assert v["datasource"]["uid"] == uid, v
    assert {"campus-district-overview", "campus-school-detail"} <= uids, uids


# ---- the ACL file against the real broker ----

class Client:
    """A paho client logged in as user; keeps what arrives."""

    def __init__(self, port, user, password, name):
        self.got = []
        self.lock = threading.Lock()
        self.rc = None
        self.granted = {}
        self.connected = threading.Event()
        self.c = mqtt.Client(client_id=f"acl-{name}-{os.getpid()}")
        if user is not None:
            self.c.username_pw_set(user, password)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.connect("127.0.0.1", port, keepalive=10)
        self.c.loop_start()
        wait_for(lambda: self.rc is not None, 10, f"{name} CONNACK")

    def _on_connect(self, client, userdata, flags, rc):
        self.rc = rc
        if rc == 0:
            self.connected.set()

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.got.append((msg.topic, msg.payload.decode()))

    def _on_subscribe(self, client, userdata, mid, granted):
        self.granted[mid] = granted

    def subscribe(self, *topics):
        """Subscribe and wait for the SUBACK; the granted QoS (128 = refused) per topic."""
        rc, mid = self.c.subscribe([(t, 1) for t in topics])
        assert rc == 0, rc
        wait_for(lambda: mid in self.granted, 5, f"SUBACK for {topics}")
        return dict(zip(topics, self.granted[mid]))

    def publish(self, topic, payload):
        info = self.c.publish(topic, payload, qos=1)
        info.wait_for_publish()  # PUBACK: a denied publish is acknowledged too, then dropped

    def topics(self):
        with self.lock:
            return [t for t, _ in self.got]

    def saw(self, payload):
        with self.lock:
            return any(p == payload for _, p in self.got)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def test_acl(wd):
    schools = wd.file("schools.txt", "no1-middle\nno2-primary\n")
    secrets = os.path.join(wd.path, "secrets")
    subprocess.run([os.path.join(DISTRICT_DIR, "make-passwords"), "--out", secrets, schools],
                   check=True, capture_output=True)
    pw = {n: open(os.path.join(secrets, f"mqtt-{n}.password")).read().strip()
          for n in ("no1-middle", "no2-primary", "district")}
    port = free_port()
    data = os.path.join(wd.path, "data")
    os.makedirs(data)
    conf = wd.file("district.conf", dd.district_broker_conf(
        port, os.path.join(secrets, "passwd"), os.path.join(DISTRICT_DIR, "acl"), data,
        os.geteuid() == 0))
    broker = Process("district-mosquitto", ["mosquitto", "-c", conf], wd).start()
    wait_for(lambda: port_open(port), 10, "district broker")

    # Logins: no anonymous client, no wrong password, no school with another's password.
    for user, password, what in ((None, None, "anonymous"), ("no1-middle", "wrong", "bad password"),
                                 ("no1-middle", pw["no2-primary"], "another school's password"),
                                 ("nobody", pw["district"], "unknown user")):
        c = Client(port, user, password, "refused")
        assert c.rc in (4, 5), f"{what}: CONNACK {c.rc}, want refused"
        c.close()

    district = Client(port, "district", pw["district"], "district")
    assert district.rc == 0
    assert district.subscribe("campus/#") == {"campus/#": 1}
    no1 = Client(port, "no1-middle", pw["no1-middle"], "no1")
    no2 = Client(port, "no2-primary", pw["no2-primary"], "no2")
    assert no1.rc == 0 and no2.rc == 0

    def marker_from(client, topic, tag):
        """Publish a marker on an allowed topic after the probes and wait until the
        district sees it: the same connection's earlier messages would be there by then."""
        client.publish(topic, f"marker-{tag}")
        wait_for(lambda: district.saw(f"marker-{tag}"), 5, f"marker {tag} at the district")

    # A school writes only under its own prefix.
    own = "campus/haidian/no1-middle"
    no1.publish(f"{own}/telemetry/A-1F-hydrant-01", "own-telemetry")
    no1.publish(f"{own}/status", "own-status")
    no1.publish("campus/haidian/no2-primary/telemetry/A-1F-hydrant-01", "forged-other-school")
    no1.publish("campus/haidian/no2-primary/cmd/ack", "forged-command")
    no1.publish("campus/chaoyang/no1-middle/telemetry/x", "other-district")
    no1.publish("campus/haidian/no1-middle-annex/telemetry/x", "prefix-lookalike")
    no1.publish("elsewhere/x", "outside-prefix")
    marker_from(no1, f"{own}/events", "no1")
    for allowed in ("own-telemetry", "own-status"):
        assert district.saw(allowed), f"{allowed} did not reach the district: {district.got}"
    for denied in ("forged-other-school", "forged-command", "other-district", "prefix-lookalike",
                   "outside-prefix"):
        assert not district.saw(denied), f"the ACL let {denied} through: {district.got}"

    # A school reads only its own commands.
    g = no1.subscribe(f"{own}/cmd/+", "campus/haidian/no2-primary/cmd/#", f"{own}/telemetry/#",
                      "campus/#")
    log(f"no1-middle SUBACK: {g}")
    assert g[f"{own}/cmd/+"] == 1, g
    district.publish("campus/haidian/no2-primary/cmd/ack", "cmd-for-no2")
    no2.publish("campus/haidian/no2-primary/telemetry/B-1F-exit-main", "no2-telemetry")
    no2.publish("campus/haidian/no2-primary/cmd/result", "no2-result")
    no1.publish(f"{own}/cmd/result", "no1-result")  # its own, but not a command topic it reads
    district.publish(f"{own}/cmd/ack", "cmd-for-no1")
    wait_for(lambda: no1.saw("cmd-for-no1"), 5, "no1-middle to get its own command")
    for other in ("cmd-for-no2", "no2-telemetry", "no2-result", "own-telemetry"):
        assert not no1.saw(other), f"no1-middle read {other}: {no1.got}"
    assert all(t.startswith(f"{own}/cmd/") for t in no1.topics()), no1.topics()
    # no2-primary subscribed to nothing yet: give it its commands and check the other way.
    assert no2.subscribe("campus/haidian/+/cmd/#")["campus/haidian/+/cmd/#"] == 1
    district.publish(f"{own}/cmd/shelve", "cmd2-for-no1")
    district.publish("campus/haidian/no2-primary/cmd/shelve", "cmd2-for-no2")
    wait_for(lambda: no2.saw("cmd2-for-no2"), 5, "no2-primary to get its own command")
    assert not no2.saw("cmd2-for-no1"), no2.got

    # The district reads everything (it saw the schools above) and writes commands only.
    watcher = Client(port, "district", pw["district"], "watcher")
    watcher.subscribe("campus/#")
    district.publish(f"{own}/telemetry/A-1F-hydrant-01", "forged-by-district")
    district.publish(f"{own}/alarms/x/y", "forged-alarm-by-district")
    district.publish("campus/chaoyang/x/cmd/ack", "cmd-other-district")
    district.publish(f"{own}/cmd/reset", "district-marker")
    wait_for(lambda: watcher.saw("district-marker"), 5, "the district's command at a watcher")
    for denied in ("forged-by-district", "forged-alarm-by-district", "cmd-other-district"):
        assert not watcher.saw(denied), f"the district user could write {denied}"
    for c in (district, no1, no2, watcher):
        c.close()
    broker.stop()


# ---- InfluxDB: the init file ----

def test_retention(wd):
    iql = os.path.join(DISTRICT_DIR, "influxdb-init.iql")
    lines = open(iql).read().rstrip("\n").split("\n")
    # influx -execute sends the file line by line and stops at an empty one.
    assert all(line.strip() for line in lines), "influxdb-init.iql has a blank line"
    statements = [line for line in lines if not line.startswith("--")]
    docs = open(os.path.join(SOURCE_DIR, "docs", "district.md")).read()
    for s in statements:
        assert s in docs, f"docs/district.md does not give the exact statement: {s}"
    influx = Influxd(wd, auth=("admin", "adm1n-pw")).start()
    for _ in range(2):  # the file may run again on an existing database
        dd.apply_iql(influx.port, "adm1n-pw")
    admin = dd.Influx(influx.url, "admin", "adm1n-pw")
    rps = {r[0]: r for s in admin.series('SHOW RETENTION POLICIES ON "campus"', db=None)
           for r in s["values"]}
    assert rps["raw"][1] == "2160h0m0s" and rps["raw"][4] is True, rps       # 90 days, default
    assert rps["hourly"][1] == f"{260 * 7 * 24}h0m0s" and rps["hourly"][4] is False, rps
    cqs = [v for s in admin.series("SHOW CONTINUOUS QUERIES", db=None) if s["name"] == "campus"
           for v in s["values"]]
    assert [c[0] for c in cqs] == ["cq_hourly"], cqs
    assert "RESAMPLE EVERY 1h FOR 6h" in cqs[0][1] and "INTO campus.hourly.:MEASUREMENT" in cqs[0][1]
    # The rollup of a few points: the continuous query's own SELECT over them.
    hour = (int(time.time()) // 3600 - 1) * 3600
    lines = [f"hydrant_pressure,district=d,school=s,sensor=h1 pressure={p} {(hour + i * 600) * 10**9}"
             for i, p in enumerate((0.40, 0.05, 0.45))]
    lines.append(f'exit_door,district=d,school=s,sensor=e1 state="locked" {hour * 10**9}')
    status, body = influx.write("\n".join(lines), "campus")
    assert status == 204, (status, body)
    assert dd.backfill_rollups(admin) == ["cq_hourly"]
    row = admin.series('SELECT * FROM "campus"."hourly"."hydrant_pressure"', db=None)[0]
    got = dict(zip(row["columns"], row["values"][0]))
    assert got["min_pressure"] == 0.05 and got["max_pressure"] == 0.45, got
    assert abs(got["mean_pressure"] - 0.3) < 1e-9 and got["count_pressure"] == 3, got
    assert got["last_pressure"] == 0.45 and got["sensor"] == "h1" and got["school"] == "s", got
    door = admin.series('SELECT * FROM "campus"."hourly"."exit_door"', db=None)[0]
    got = dict(zip(door["columns"], door["values"][0]))
    assert got["last_state"] == "locked" and got["count_state"] == 1, got
    influx.stop()


# ---- deployment files ----

def compose_config():
    r = subprocess.run(["docker-compose", "-f", os.path.join(SOURCE_DIR, "docker-compose.yml"),
                        "config"], capture_output=True, text=True, timeout=60, cwd=SOURCE_DIR)
    assert r.returncode == 0, f"docker-compose config: {r.stderr}"
    import yaml  # python3-yaml comes with Debian's docker-compose
    return yaml.safe_load(r.stdout)


def test_compose_and_images(wd):
    cfg = compose_config()
    services = cfg["services"]
    for name in ("mosquitto", "influxdb", "grafana"):
        assert name in services, sorted(services)
    assert services["influxdb"]["image"].startswith("influxdb:1.8"), services["influxdb"]
    # Every file the stack mounts exists (the secrets are made by make-passwords).
    secrets_dir = os.path.join(DISTRICT_DIR, "secrets")
    for name, svc in services.items():
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("/") and not src.startswith(secrets_dir):
                assert os.path.exists(src), f"{name}: {src} does not exist"
    for name, s in cfg["secrets"].items():
        assert s["file"].startswith(secrets_dir), (name, s)
    # The example schools: a gateway on each school config, logging in as its school with
    # its own secret; their configs pass --check-config (secrets and state moved here).
    listed = [x.strip() for x in open(os.path.join(DISTRICT_DIR, "schools.txt"))
              if x.strip() and not x.startswith("#")]
    gateways = {n: s for n, s in services.items() if s.get("command", [None])[0] == "campusgw"}
    assert len(gateways) == 2, sorted(gateways)
    subprocess.run([os.path.join(DISTRICT_DIR, "make-passwords"), "--out", wd.file("secrets"),
                    os.path.join(DISTRICT_DIR, "schools.txt")], check=True, capture_output=True)
    for name, svc in gateways.items():
        assert name in listed, f"{name} is not in config/district/schools.txt"
        assert services[f"{name}-sim"]["network_mode"] == svc["network_mode"] == \
            f"service:{name}-hub", name
        mounted = [v.split(":")[0] for v in svc["volumes"] if v.endswith(":/etc/campusgw/campusgw.cfg:ro")]
        assert len(mounted) == 1, svc["volumes"]
        text = open(mounted[0]).read()
        for key in ("school", "username"):
            assert re.search(rf'\b{key} = "{name}";', text), f"{mounted[0]}: {key} is not {name}"
        secret = f"mqtt_{name.replace('-', '_')}"
        assert secret in [s["source"] for s in svc["secrets"]], svc["secrets"]
        assert f"/run/secrets/{secret}" in text, f"{mounted[0]} does not read its secret {secret}"
        local = text.replace(f"/run/secrets/{secret}", wd.file(f"secrets/mqtt-{name}.password"))
        local = local.replace("/run/secrets/influx_campusgw", wd.file("secrets/influx-campusgw.password"))
        local = local.replace('"/var/lib/campusgw"', f'"{wd.path}/state-{name}"')
        assert "/run/secrets" not in local
        path = wd.file(f"{name}.cfg", local)
        r = subprocess.run([os.path.join(BUILD_DIR, "campusgw"), "--check-config", "-c", path],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"{name}.cfg: {r.stdout}{r.stderr}"
    # The image: its runtime packages are exactly what the binaries need (no -dev).
    docker = open(os.path.join(SOURCE_DIR, "Dockerfile")).read()
    stages = re.split(r"(?m)^FROM ", docker)[1:]
    assert len(stages) == 2 and stages[0].startswith("debian:bookworm AS build") and \
        stages[1].startswith("debian:bookworm-slim"), [s.split("\n")[0] for s in stages]

    def installed(stage):
        m = re.search(r"apt-get install[^\n]*\\\n((?:.*\\\n)+)", stage)
        return set(m.group(1).replace("\\", " ").split()) - {"&&"}
    runtime = installed(stages[1])
    assert not [p for p in runtime if p.endswith("-dev")], runtime
    assert re.search(r"(?m)^USER campusgw$", stages[1]) and "--uid 10001" in stages[1], \
        "the runtime stage must run as the unprivileged campusgw user (uid 10001)"
    needed = set()
    for exe in ("campusgw", "campusgw-ctl", "campusgw-sim"):
        assert re.search(rf"/out/usr/bin/{exe}\b", stages[1]), exe
        out = subprocess.run(["readelf", "-d", os.path.join(BUILD_DIR, exe)], capture_output=True,
                             text=True, check=True).stdout
        needed |= set(re.findall(r"\(NEEDED\).*\[(.+)\]", out))
    packages = set()
    for lib in needed:
        if lib.startswith(("libasan", "libubsan")):
            continue  # a sanitizer build's runtime, not the image's
        pkg = None
        for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib"):
            r = subprocess.run(["dpkg", "-S", os.path.join(d, lib)], capture_output=True, text=True)
            if r.returncode == 0:
                pkg = r.stdout.split(":")[0]
                break
        assert pkg, f"no package owns {lib}"
        packages.add(pkg)
    missing = packages - runtime - {"libc6", "libgcc-s1"}  # in every Debian image
    assert not missing, f"Dockerfile runtime stage lacks {missing} (the binaries need them)"
    log(f"image runtime packages cover {len(needed)} libraries: {sorted(packages)}")
    build = installed(stages[0])
    assert {"cmake", "pkg-config", "build-essential"} <= build, build
    ignore = open(os.path.join(SOURCE_DIR, ".dockerignore")).read().split()
    assert "config/district/secrets" in ignore and ".git" in ignore, ignore


if __name__ == "__main__":
    run([test_dashboard_files, test_retention, test_acl, test_compose_and_images,
         test_demo_once_missing_data, test_demo_once])
