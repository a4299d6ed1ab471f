#!/usr/bin/python3
"""The district stack without Docker, on loopback (scripts/district-demo runs this).

One district Mosquitto with config/district/mosquitto.conf and its ACL file,
per-school passwords from config/district/make-passwords, one influxd set up by
config/district/influxdb-init.iql (raw 90 days, hourly rollups), a shared
school hub, and three schools: each a campusgw-sim playing a variant of
config/demo-scenario.cfg and a gateway on config/demo.cfg whose uplink logs in
to the district broker as its school and whose influx sink writes to the
district influxd. The Grafana dashboards' queries are read from
config/grafana/dashboards/*.json and run against influxd (as the read-only
user Grafana uses), and the district overview table is printed.

  district_demo.py --bin BUILD_DIR [--once] [--timeout S] [--json FILE] [--keep]

--once: wait (at most --timeout seconds) until every school's telemetry, its
scripted start-up alarms and a fresh school_kpi point have arrived, print the
overview, stop everything and exit 0; exit 1 naming what is missing otherwise.
Without it: print the overview whenever new figures arrive, until Ctrl-C.
"""

import argparse
import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DISTRICT_DIR = os.path.join(ROOT, "config", "district")
DASHBOARD_DIR = os.path.join(ROOT, "config", "grafana", "dashboards")
DATASOURCE_FILE = os.path.join(ROOT, "config", "grafana", "provisioning", "datasources",
                               "campus-influxdb.yaml")
DISTRICT = "haidian"          # the district of config/district/acl and config/demo.cfg
PREFIX = "campus"             # the topic prefix of the same
DATABASE = "campus"           # config/district/influxdb-init.iql
DISTRICT_USER = "district"    # config/district/acl
OVERVIEW_UID = "campus-district-overview"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

# The three schools. Each one's simulator starts from demo-scenario.cfg with some devices
# already faulty (and, for those, no script), so the overview has something to sort:
# `start` maps a device to the scenario keys it starts with; `alarms` are the alarm keys
# those faults raise within seconds (rules of config/demo.cfg).
SCHOOLS = [
    {"id": "no1-middle", "name": "No. 1 Middle School", "start": {}, "alarms": []},
    {"id": "no2-primary", "name": "No. 2 Primary School",
     "start": {"A-1F-hydrant-01": {"pressure": "0.02"}, "B-1F-exit-main": {"state": '"locked"'}},
     "alarms": ["A-1F-hydrant-01/hydrant-pressure-low",
                "B-1F-exit-main/exit-locked-during-school-hours"]},
    {"id": "no3-high", "name": "No. 3 High School",
     "start": {"B-1F-exit-main": {"state": '"locked"'}},
     "alarms": ["B-1F-exit-main/exit-locked-during-school-hours"]},
]


def setup_harness(bin_dir):
    """tests/integration/harness.py, pointed at bin_dir's binaries."""
    os.environ["GW_BUILD_DIR"] = bin_dir
    os.environ["GW_SOURCE_DIR"] = ROOT
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import harness
    return harness


def say(msg):
    print(f"==> {msg}", file=sys.stderr, flush=True)


def subst_once(text, pattern, repl, what):
    """re.subn that must replace exactly once: the file changed if it does not."""
    out, n = re.subn(pattern, repl, text, flags=re.M)
    if n != 1:
        raise RuntimeError(f"{what}: expected one line matching {pattern!r}, found {n}")
    return out


# ---- configs derived from the repository's files ----

def district_broker_conf(port, passwd, acl, data_dir, as_root):
    """config/district/mosquitto.conf on a loopback port with local paths."""
    path = os.path.join(DISTRICT_DIR, "mosquitto.conf")
    text = open(path).read()
    text = subst_once(text, r"^listener 1883$", f"listener {port} 127.0.0.1", path)
    text = subst_once(text, r"^password_file .*$", f"password_file {passwd}", path)
    text = subst_once(text, r"^acl_file .*$", f"acl_file {acl}", path)
    text = subst_once(text, r"^persistence_location .*$", f"persistence_location {data_dir}/",
                      path)
    # Run as root, mosquitto needs this to write its files (DESIGN.md, known traps).
    return text + ("user root\n" if as_root else "")


def scenario_for(school):
    """demo-scenario.cfg with the school's start-up faults; schools with some have no script."""
    path = os.path.join(ROOT, "config", "demo-scenario.cfg")
    text = open(path).read()
    for device, keys in school["start"].items():
        for key, value in keys.items():
            text = subst_once(text, rf'^(\s*\{{ name = "{re.escape(device)}";.*?\b{key} = )[^;]+;',
                              rf"\g<1>{value};", f"{path} ({device}.{key})")
    if school["start"]:
        text = subst_once(text, r"^script = \((?:.|\n)*?^\);\n", "", path + " (script)")
        text = subst_once(text, r"^repeat_s = .*\n", "", path + " (repeat_s)")
    return text


def gateway_config(school, state_dir, hub_port, sim_port, lora_port, http_port, broker_port,
                   influx_url, secrets):
    """config/demo.cfg for one school: its own ports and state, the district uplink and InfluxDB."""
    path = os.path.join(ROOT, "config", "demo.cfg")
    text = open(path).read()
    text = subst_once(text, r'^(\s*)school = ".*";$', rf'\g<1>school = "{school["id"]}";', path)
    text = subst_once(text, r'^(\s*)name = "Demo School";$', rf'\g<1>name = "{school["name"]}";',
                      path)
    text = subst_once(text, r"^state_dir = .*$", f'state_dir = "{state_dir}";', path)
    text = subst_once(text, r"port = 1883;", f"port = {hub_port};", path)
    text = subst_once(text, r"127\.0\.0\.1:1502", f"127.0.0.1:{sim_port}", path)
    text = subst_once(text, r"127\.0\.0\.1:1700", f"127.0.0.1:{lora_port}", path)
    text = subst_once(text, r"127\.0\.0\.1:8080", f"127.0.0.1:{http_port}", path)
    # demo.cfg's own figures interval: every minute, as the district wants it here
    text = subst_once(text, r"^kpi = \{ interval_s = \d+; \};$", "", path)
    sid = school["id"]
    return text + f"""
# The district (scripts/district-demo): the school's own login on the district broker,
# the district InfluxDB's writer account, the school's figures every minute.
uplink = {{ host = "127.0.0.1"; port = {broker_port}; username = "{sid}";
           password_file = "{secrets}/mqtt-{sid}.password"; }};
influx = {{ url = "{influx_url}"; database = "{DATABASE}"; username = "campusgw";
           password_file = "{secrets}/influx-campusgw.password"; flush_ms = 500; }};
kpi = {{ interval_s = 60; }};
"""


# ---- InfluxDB ----

class Influx:
    """InfluxQL over HTTP as one user (Grafana's read-only account, or admin)."""

    def __init__(self, url, user, password):
        self.url = url
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def query(self, q, db=DATABASE, epoch="ms"):
        """The results list of the reply; raises with InfluxDB's error."""
        params = {"q": q, "epoch": epoch}
        if db:
            params["db"] = db
        method = "GET" if q.lstrip().upper().startswith(("SELECT", "SHOW")) else "POST"
        req = urllib.request.Request(f"{self.url}/query?{urllib.parse.urlencode(params)}",
                                     method=method, headers={"Authorization": self.auth})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                body = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"influxd: {q!r}: HTTP {e.code} {e.read()[:300]!r}") from None
        for res in body.get("results", []):
            if "error" in res:
                raise RuntimeError(f"influxd: {q!r}: {res['error']}")
        return body.get("results", [])

    def series(self, q, db=DATABASE):
        out = []
        for res in self.query(q, db):
            out.extend(res.get("series", []))
        return out


def apply_iql(influx_port, admin_password):
    """config/district/influxdb-init.iql the way the influxdb image applies it."""
    path = os.path.join(DISTRICT_DIR, "influxdb-init.iql")
    with open(path) as f:
        text = f.read().rstrip("\n")
    env = dict(os.environ, INFLUX_PASSWORD=admin_password)  # not on the command line
    r = subprocess.run(["influx", "-host", "127.0.0.1", "-port", str(influx_port),
                        "-username", "admin", "-execute", text],
                       env=env, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"influx -execute {path} failed: {r.stdout}{r.stderr}")


def influx_users(admin, writer_password, reader_password):
    """The accounts docker-compose.yml's InfluxDB gets (docs/district.md lists them)."""
    admin.query(f"CREATE USER \"campusgw\" WITH PASSWORD '{writer_password}'", db=None)
    admin.query(f'GRANT WRITE ON "{DATABASE}" TO "campusgw"', db=None)
    admin.query(f"CREATE USER \"grafana\" WITH PASSWORD '{reader_password}'", db=None)
    admin.query(f'GRANT READ ON "{DATABASE}" TO "grafana"', db=None)


def backfill_rollups(admin):
    """Run each continuous query's SELECT over the last 2 hours now: influxd runs them at the
    top of the hour, so this shows the rollup (and checks the statement) at once."""
    done = []
    for s in admin.series("SHOW CONTINUOUS QUERIES", db=None):
        if s.get("name") != DATABASE:
            continue
        for name, text in s.get("values", []):
            m = re.search(r"\bBEGIN (SELECT .*) (GROUP BY .*) END$", text)
            if not m:
                raise RuntimeError(f"continuous query {name}: cannot find its SELECT: {text}")
            admin.query(f"{m.group(1)} WHERE time >= now() - 2h {m.group(2)}")
            done.append(name)
    return done


# ---- the dashboards ----

def read_text(path):
    with open(path) as f:
        return f.read()


def datasource_min_interval():
    m = re.search(r"^\s*timeInterval:\s*(\S+)", read_text(DATASOURCE_FILE), re.M)
    return duration_s(m.group(1)) if m else 1


def duration_s(text):
    m = re.fullmatch(r"(\d+)([smhdw])", text)
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def nice_interval(seconds):
    """Grafana's rounding of $__interval (range / max data points) to a round step."""
    steps = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800,
             21600, 43200, 86400]
    best = steps[0]
    for s in steps:
        if s <= seconds:
            best = s
    return f"{best}s"


def load_dashboards():
    """{uid: dashboard} of every JSON file in config/grafana/dashboards."""
    out = {}
    for name in sorted(os.listdir(DASHBOARD_DIR)):
        if name.endswith(".json"):
            d = json.loads(read_text(os.path.join(DASHBOARD_DIR, name)))
            d["_file"] = name
            out[d["uid"]] = d
    return out


def dashboard_queries(d):
    """[(panel, target)] of every InfluxQL target of dashboard d, rows included."""
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                out.append((p, t))
            walk(p.get("panels", []))
    walk(d.get("panels", []))
    return out


def expand(query, variables, range_s, interval):
    """Grafana's macros and template variables, as it sends them to InfluxDB."""
    q = query.replace("$timeFilter", f"time >= now() - {range_s}s")
    q = q.replace("$__interval", interval)
    for name, value in sorted(variables.items(), key=lambda kv: -len(kv[0])):
        q = q.replace(f"${{{name}}}", value).replace(f"${name}", value)
    if re.search(r"\$[A-Za-z_{]", q):
        raise RuntimeError(f"unexpanded variable in {query!r}")
    return q


def as_table(series):
    """InfluxQL series -> one table as Grafana's table format builds it: Time, the tags, the
    fields; one row per point of every series."""
    tag_keys = []
    for s in series:
        for k in sorted(s.get("tags", {})):
            if k not in tag_keys:
                tag_keys.append(k)
    value_cols = []
    for s in series:
        for c in s["columns"][1:]:
            if c not in value_cols:
                value_cols.append(c)
    columns = ["Time"] + tag_keys + value_cols
    rows = []
    for s in series:
        tags = s.get("tags", {})
        for v in s.get("values", []):
            point = dict(zip(s["columns"], v))
            rows.append([point["time"]] + [tags.get(k) for k in tag_keys]
                        + [point.get(c) for c in value_cols])
    return columns, rows


def transform(columns, rows, transformations):
    """The panel's sortBy and organize (rename) transformations, as Grafana applies them."""
    for t in transformations:
        opts = t.get("options", {})
        if t["id"] == "sortBy":
            for spec in reversed(opts.get("sort", [])):
                if spec["field"] not in columns:
                    continue
                i = columns.index(spec["field"])
                # nulls last either way, like Grafana
                present = [r for r in rows if r[i] is not None]
                missing = [r for r in rows if r[i] is None]
                present.sort(key=lambda r: r[i], reverse=bool(spec.get("desc")))
                rows = present + missing
        elif t["id"] == "organize":
            ren = opts.get("renameByName", {})
            columns = [ren.get(c, c) for c in columns]
        else:
            raise RuntimeError(f"transformation {t['id']!r}: the demo does not know it")
    return columns, rows


class Dashboards:
    """Runs every query of every dashboard file against influxd, per school where the query
    uses $school, with the template variables resolved by their own queries."""

    def __init__(self, influx):
        self.influx = influx
        self.dashboards = load_dashboards()
        self.min_interval = datasource_min_interval()

    def run_all(self):
        results = []
        for uid, d in self.dashboards.items():
            range_s = duration_s(re.fullmatch(r"now-(\w+)", d["time"]["from"]).group(1))
            variables = self.resolve_variables(d, results)
            names = [v["name"] for v in d.get("templating", {}).get("list", [])]
            for panel, target in dashboard_queries(d):
                interval = nice_interval(max(self.min_interval,
                                             range_s / panel.get("maxDataPoints", 1000)))
                uses = [n for n in names if re.search(rf"\${{?{n}\b", target["query"])]
                combos = [{}]
                for n in uses:
                    combos = [dict(c, **{n: v}) for c in combos for v in variables[n]]
                for combo in combos:
                    q = expand(target["query"], combo, range_s, interval)
                    series = self.influx.series(q)
                    entry = {"dashboard": uid, "file": d["_file"], "panel": panel["title"],
                             "panel_type": panel["type"], "refId": target["refId"],
                             "template": target["query"], "vars": combo, "query": q,
                             "series": series}
                    if target.get("resultFormat") == "table":
                        cols, rows = as_table(series)
                        cols, rows = transform(cols, rows, panel.get("transformations", []))
                        entry["table"] = {"columns": cols, "rows": rows}
                    results.append(entry)
        return results

    def resolve_variables(self, d, results):
        """{name: [values]}: each query variable's values, in order (later ones may use
        earlier ones: school's query names $district); the first value is the current one
        for the variables after it, as Grafana selects it."""
        values, current = {}, {}
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") != "query":
                continue
            q = expand(v["query"], current, 0, "1s")
            got = []
            for s in self.influx.series(q):
                got += [row[1] for row in s.get("values", [])]
            got = sorted(set(got))
            results.append({"dashboard": d["uid"], "file": d["_file"], "variable": v["name"],
                            "template": v["query"], "query": q, "vars": dict(current),
                            "values": got})
            values[v["name"]] = got
            if got:
                current[v["name"]] = got[0]
        return values


def overview_of(results):
    """The district overview table (the school_kpi table panel of the overview dashboard)."""
    for r in results:
        if (r.get("dashboard") == OVERVIEW_UID and "table" in r and r["panel_type"] == "table"
                and '"school_kpi"' in r["template"]):
            return r
    raise RuntimeError(f"{OVERVIEW_UID}: no table panel on school_kpi")


def format_table(columns, rows):
    def cell(v, col):
        if v is None:
            return "-"
        if col in ("Time", "last report") and isinstance(v, int):
            return time.strftime("%H:%M:%S", time.localtime(v / 1000))
        if isinstance(v, float):
            return f"{v:.1f}"
        return str(v)
    cells = [[cell(v, c) for v, c in zip(row, columns)] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(columns, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for r in cells:
        lines.append("  ".join(v.rjust(w) if i else v.ljust(w)
                               for i, (v, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)


def print_overview(results):
    ov = overview_of(results)
    cols, rows = ov["table"]["columns"], ov["table"]["rows"]
    # school first: it names the row (Grafana shows the columns in query order after Time).
    order = ([cols.index("school")] if "school" in cols else []) + \
            [i for i, c in enumerate(cols) if c not in ("school", "district")]
    cols = [cols[i] for i in order]
    rows = [[r[i] for i in order] for r in rows]
    print(f"\nDistrict overview ({DISTRICT}), worst first "
          f"(dashboard \"{ov['file']}\", panel \"{ov['panel']}\"):\n", flush=True)
    print(format_table(cols, rows) if rows else "(no school_kpi point yet)", flush=True)
    print(flush=True)


# ---- the district's view over MQTT ----

class DistrictView:
    """Logged in to the district broker as the district user, subscribed to everything."""

    def __init__(self, port, password):
        import paho.mqtt.client as mqtt
        self.lock = threading.Lock()
        self.telemetry = {}   # school -> count
        self.alarms = {}      # (school, key) -> state (retained P/alarms)
        self.kpi = {}         # school -> newest P/kpi object
        self.refused = None
        self.connected = threading.Event()
        self.client = mqtt.Client(client_id=f"district-demo-{os.getpid()}")
        self.client.username_pw_set(DISTRICT_USER, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, rc):
        if rc != 0:
            self.refused = rc
            return
        client.subscribe(f"{PREFIX}/#", qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        parts = msg.topic.split("/")
        if len(parts) < 4 or parts[0] != PREFIX or parts[1] != DISTRICT:
            return
        school, kind = parts[2], parts[3]
        with self.lock:
            if kind == "telemetry":
                self.telemetry[school] = self.telemetry.get(school, 0) + 1
            elif kind == "alarms":
                key = "/".join(parts[4:])
                state = json.loads(msg.payload).get("state") if msg.payload else "normal"
                self.alarms[(school, key)] = state
            elif kind == "kpi" and msg.payload:
                self.kpi[school] = json.loads(msg.payload)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


# ---- the run ----

class Stack:
    def __init__(self, h, args):
        self.h = h
        self.args = args
        self.wd = h.Workdir("district")
        self.wd.keep = args.keep or not args.once
        self.gateways = {}
        self.sims = {}
        self.view = None

    def secret(self, name):
        return read_text(os.path.join(self.secrets, f"{name}.password")).strip()

    def start(self):
        h, wd = self.h, self.wd
        # Passwords: the script a district runs, on the list of our schools.
        schools_file = wd.file("schools.txt", "".join(s["id"] + "\n" for s in SCHOOLS))
        self.secrets = os.path.join(wd.path, "secrets")
        subprocess.run([os.path.join(DISTRICT_DIR, "make-passwords"), "--out", self.secrets,
                        schools_file], check=True, capture_output=True)

        # The district broker: the repository's config and ACL file.
        self.broker_port = h.free_port()
        data = os.path.join(wd.path, "district-mqtt")
        os.makedirs(data, exist_ok=True)
        conf = wd.file("district-mosquitto.conf", district_broker_conf(
            self.broker_port, os.path.join(self.secrets, "passwd"),
            os.path.join(DISTRICT_DIR, "acl"), data, os.geteuid() == 0))
        self.broker = h.Process("district-mosquitto", ["mosquitto", "-c", conf], wd).start()
        h.wait_for(lambda: h.port_open(self.broker_port) or not self.broker.alive(), 10,
                   "the district broker")
        if not self.broker.alive():
            raise RuntimeError(f"district mosquitto exited: {self.broker.output()[-1500:]}")

        # One hub for the three schools (each gateway keeps to its own prefix on it).
        self.hub = h.Mosquitto(wd, name="hub").start()

        # The district InfluxDB: admin login, continuous queries on, then the init file.
        admin_pw = self.secret("influx-admin")
        self.influxd = h.Influxd(wd, auth=("admin", admin_pw))
        text = read_text(self.influxd.argv[-1])
        text = subst_once(text, r"^\[continuous_queries\]\n  enabled = false$",
                          "[continuous_queries]\n  enabled = true", "harness influxd.conf")
        with open(self.influxd.argv[-1], "w") as f:
            f.write(text)
        self.influxd.start()
        apply_iql(self.influxd.port, admin_pw)
        self.admin = Influx(self.influxd.url, "admin", admin_pw)
        influx_users(self.admin, self.secret("influx-campusgw"), self.secret("influx-grafana"))
        self.grafana = Influx(self.influxd.url, "grafana", self.secret("influx-grafana"))

        self.view = DistrictView(self.broker_port, self.secret("mqtt-district"))
        h.wait_for(lambda: self.view.connected.is_set() or self.view.refused is not None, 10,
                   "the district user to log in")
        if self.view.refused is not None:
            raise RuntimeError(f"the district broker refused the district user (rc {self.view.refused})")

        for school in SCHOOLS:
            sid = school["id"]
            sim_port, lora_port, http_port = h.free_port(), h.free_port(), h.free_port()
            scenario = wd.file(f"scenario-{sid}.cfg", scenario_for(school))
            sim = h.Process(f"sim-{sid}", [os.path.join(h.BUILD_DIR, "campusgw-sim"), "-c", scenario,
                                           "--listen", f"127.0.0.1:{sim_port}",
                                           "--lora-forward", f"127.0.0.1:{lora_port}"], wd).start()
            h.wait_for(lambda: h.port_open(sim_port) or not sim.alive(), 10, f"{sid}'s simulator")
            if not sim.alive():
                raise RuntimeError(f"{sid}'s campusgw-sim exited: {sim.output()[-1500:]}")
            self.sims[sid] = sim
            cfg = gateway_config(school, os.path.join(wd.path, f"state-{sid}"), self.hub.port,
                                 sim_port, lora_port, http_port, self.broker_port,
                                 self.influxd.url, self.secrets)
            gw = h.Gateway(wd, cfg, name=f"campusgw-{sid}")
            check = subprocess.run([gw.argv[0], "--check-config", "-c", gw.config_path],
                                   capture_output=True, text=True)
            if check.returncode != 0:
                raise RuntimeError(f"{sid}: the generated config is invalid:\n{check.stdout}{check.stderr}")
            gw.http_port = http_port
            self.gateways[sid] = gw.start()

    # -- what has arrived --

    def missing(self, since_ms=None):
        """What is still missing, per school (empty: everything is in)."""
        out = []
        with self.view.lock:
            telemetry = dict(self.view.telemetry)
            alarms = dict(self.view.alarms)
        for school in SCHOOLS:
            sid = school["id"]
            if not telemetry.get(sid):
                out.append(f"{sid}: no telemetry on the district broker (uplink as {sid})")
            for key in school["alarms"]:
                if alarms.get((sid, key)) not in ("unacked", "acked"):
                    out.append(f"{sid}: alarm {key} not on the district broker")
            where = f"\"school\" = '{sid}'"
            if not self.grafana.series(f'SELECT last("pressure") FROM "hydrant_pressure" WHERE {where}'):
                out.append(f"{sid}: no hydrant_pressure point in InfluxDB")
            kpi_q = f'SELECT last("sensors_total") FROM "school_kpi" WHERE {where}'
            if since_ms is not None:
                kpi_q += f" AND time >= {since_ms}ms"
            if not self.grafana.series(kpi_q):
                out.append(f"{sid}: no school_kpi point in InfluxDB"
                           + (" since the figures were asked for (SIGUSR1)" if since_ms else ""))
        return out

    def wait_until(self, deadline, since_ms=None):
        while True:
            gaps = self.missing(since_ms)
            if not gaps or time.monotonic() >= deadline:
                return gaps
            time.sleep(0.5)

    def ask_figures(self):
        """SIGUSR1: every gateway publishes its school's figures (and metrics) now."""
        now_ms = int(time.time() * 1000) - 1000  # the gateway stamps with its own clock
        for gw in self.gateways.values():
            gw.proc.send_signal(signal.SIGUSR1)
        return now_ms

    def dashboards(self):
        backfill_rollups(self.admin)
        return Dashboards(self.grafana).run_all()

    def where_to_look(self):
        lines = [f"\n  campusgw district demo is running (files in {self.wd.path})\n",
                 "  Everything the schools send to the district broker (as the district user):",
                 f"    mosquitto_sub -h 127.0.0.1 -p {self.broker_port} -u {DISTRICT_USER} "
                 f"-P \"$(cat {self.secrets}/mqtt-district.password)\" -t '{PREFIX}/{DISTRICT}/#' -v",
                 "  The district InfluxDB (the dashboards' read-only account):",
                 f"    INFLUX_PASSWORD=\"$(cat {self.secrets}/influx-grafana.password)\" influx "
                 f"-port {self.influxd.port} -username grafana -database {DATABASE}",
                 "  Each school's status page and log:"]
        for sid, gw in self.gateways.items():
            lines.append(f"    {sid:12} http://127.0.0.1:{gw.http_port}/   {gw.log_path}")
        lines.append(f"  The school hub (all three): mosquitto_sub -p {self.hub.port} -t '{PREFIX}/#' -v\n")
        print("\n".join(lines), flush=True)

    def stop(self):
        """Stop what we started, gateways first (they flush); a non-zero exit or a sanitizer
        report is an error."""
        problems = []
        if self.view:
            self.view.close()
        for name, p in list(self.gateways.items()) + list(self.sims.items()):
            rc = p.stop() if p.proc else None
            if rc not in (0, None):
                problems.append(f"{p.name} exited {rc} on SIGTERM")
            out = p.output()
            problems += [f"{p.name}: sanitizer report ({m})" for m in SANITIZER_MARKS if m in out]
        for p in self.wd.procs:
            if p.alive():
                p.stop()
        return problems

    def dump_logs(self):
        for p in self.wd.procs:
            tail = p.output()[-2500:]
            if tail:
                print(f"----- {p.log_path} (tail)\n{tail}", file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the build directory with campusgw and campusgw-sim")
    ap.add_argument("--once", action="store_true", help="wait for every school's data, print, stop")
    ap.add_argument("--timeout", type=float, default=90, help="--once: the deadline in seconds")
    ap.add_argument("--json", help="write every dashboard query and its result to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (always without --once)")
    args = ap.parse_args()
    for exe in ("campusgw", "campusgw-sim"):
        if not os.access(os.path.join(args.bin, exe), os.X_OK):
            print(f"district-demo: no {exe} in {args.bin}", file=sys.stderr)
            return 2

    h = setup_harness(os.path.abspath(args.bin))

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    stack = Stack(h, args)
    rc = 0
    started = time.monotonic()
    try:
        say(f"starting the district broker, influxd, a hub and {len(SCHOOLS)} schools "
            f"in {stack.wd.path}")
        stack.start()
        if args.once:
            deadline = started + args.timeout
            gaps = stack.wait_until(deadline)
            if not gaps:
                # The start-up figures may predate the scripted alarms: ask for fresh ones.
                since = stack.ask_figures()
                gaps = stack.wait_until(deadline, since_ms=since)
            if gaps:
                say(f"district demo FAILED after {time.monotonic() - started:.0f} s: "
                    + "; ".join(gaps))
                stack.dump_logs()
                rc = 1
            else:
                results = stack.dashboards()
                print_overview(results)
                if args.json:
                    with open(args.json, "w") as f:
                        json.dump({"schools": [s["id"] for s in SCHOOLS], "queries": results}, f,
                                  indent=1)
                say(f"every school's data arrived in {time.monotonic() - started:.1f} s; "
                    f"{sum(1 for r in results if 'series' in r)} dashboard queries run")
        else:
            stack.where_to_look()
            say("waiting for the schools' first figures; Ctrl-C stops everything")
            last_seen = None
            while True:
                newest = stack.grafana.series('SELECT last("sensors_total") FROM "school_kpi"')
                stamp = newest[0]["values"][0][0] if newest else None
                if stamp is not None and stamp != last_seen:
                    last_seen = stamp
                    results = stack.dashboards()
                    print_overview(results)
                    if args.json:
                        with open(args.json, "w") as f:
                            json.dump({"schools": [s["id"] for s in SCHOOLS], "queries": results},
                                      f, indent=1)
                time.sleep(5)
    except KeyboardInterrupt:
        say("stopping")
        rc = 0 if not args.once else 130
    except Exception as e:  # noqa: BLE001 - one clear line, then the logs
        say(f"district demo FAILED: {e}")
        stack.dump_logs()
        rc = 1
    finally:
        problems = stack.stop()
        for p in problems:
            say(p)
        if problems and rc == 0:
            rc = 1
        if rc != 0:
            stack.wd.keep = True
        if stack.wd.keep:
            say(f"files kept in {stack.wd.path}")
        stack.wd.cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main())
