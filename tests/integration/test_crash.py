#!/usr/bin/python3
"""kill -9 of the gateway at random moments under load, many times in a row.

Ten Modbus sensors polled every second; a flipper thread moves their values
across a `below` threshold (no delay, no deadband) on a seeded schedule, so
alarms raise and clear all the time. The gateway publishes to a hub broker
and an uplink broker; the uplink (QoS 1 for everything) is the witness, the
hub is checked for events and retained alarms too. The gateway is killed
with SIGKILL after a seeded random run time, restarted, killed again...
In about half of the runs ("off") the gateway's uplink connection goes
through a proxy that refuses it, so that run's records reach the witness
only from the store, after a later start: what a kill loses shows. In about
a third ("quiet", 3-4 s long) no value changes, so no alarm commit takes
telemetry along and only the group commit (commit_ms) protects it. The last run is left to
settle: its units go silent so the polls stop, and everything must drain.

Then, per run (a run is the seq block the gateway reserved at its start,
read from state_dir/seq before each start):
 (a) alarms: the raise/clear lines the gateway logged are exactly the
     P/events of that run, in order (a line logged just before the kill whose
     commit never happened is tolerated and counted: nobody was told); per
     key the events alternate raise/clear over all runs; the alarms a run
     restores are exactly those whose last event was a raise; every event
     reached the hub too; at the end the retained P/alarms on both brokers
     match the final values;
 (b) telemetry lost by a crash (polls the slave answered minus telemetry on
     the witness) is at most one commit window of readings plus one poll
     round, and per sensor at most its readings of one commit window plus
     the one in flight; no run has gaps inside its seqs; the last run,
     stopped by nobody, loses nothing;
 (c) per stream, seqs (after removing at-least-once duplicates, which must
     be identical) arrive strictly increasing, and nothing published before a
     run started carries a seq of that run or later.

GW_CRASH_SEED and GW_CRASHES override the seed (printed) and the number of kills.
"""

import json
import math
import os
import random
import re
import signal
import threading
import time

from harness import (PREFIX, Collector, Gateway, ModbusSlave, Mosquitto, TcpProxy, log, retained,
                     run, site_config, wait_for)

SEED = int(os.environ.get("GW_CRASH_SEED", "20240611"))
CRASHES = int(os.environ.get("GW_CRASHES", "24"))
NSENSORS = 10
INTERVAL_S = 1
COMMIT_MS = 500
THRESHOLD = 50
LOW, HIGH = 20, 80
RUN_MIN_S, RUN_MAX_S = 0.3, 2.5
# Quiet runs last longer: three poll rounds and more, so that a commit window longer than
# commit_ms shows as more than ALLOWED_LOSS_SENSOR readings of one sensor lost.
QUIET_MIN_S, QUIET_MAX_S = 3.0, 4.0
# One commit window of readings, plus one poll round (readings queued or in flight at the kill).
ALLOWED_LOSS = math.ceil(NSENSORS * COMMIT_MS / (1000 * INTERVAL_S)) + NSENSORS
# Per sensor: its readings of one commit window, plus the one being polled at the kill.
ALLOWED_LOSS_SENSOR = math.ceil(COMMIT_MS / (1000 * INTERVAL_S)) + 1

# The alarm stream's topics (record.h gw_record_stream): in order among themselves.
ALARM_TOPICS = (f"{PREFIX}/events", f"{PREFIX}/alarms/", f"{PREFIX}/notify/",
                f"{PREFIX}/cmd/result", f"{PREFIX}/hazards/", f"{PREFIX}/log")
LOG_TRANSITION = re.compile(r"^(?:WARN|INFO) alarm: (raised|cleared|chattering) key=(\S+)", re.M)
LOG_VERBS = {"raised": "raise", "cleared": "clear", "chattering": "chattering"}
LOG_RESTORED = re.compile(r"^INFO alarm: restored key=(\S+)", re.M)


def sensor(unit):
    return f"s{unit:02d}"


def key(unit):
    return f"{sensor(unit)}/level-low"


def config(wd, hub, uplink_port, slave):
    sensors = ",\n".join(
        f'  {{ id = "{sensor(u)}"; kind = "tank"; profile = "p"; modbus = "bus"; unit_id = {u}; '
        f"interval_s = {INTERVAL_S}; }}" for u in range(1, NSENSORS + 1))
    return site_config(os.path.join(wd.path, "state"), hub.port, f'''
store = {{ commit_ms = {COMMIT_MS}; }};
uplink = {{ host = "127.0.0.1"; port = {uplink_port}; }};
modbus = ( {{ name = "bus"; tcp = "127.0.0.1:{slave.port}"; timeout_ms = 300; }} );
profiles = {{ p = {{ points = ( {{ name = "level"; address = 0; }} ); }}; }};
sensors = (
{sensors}
);
rules = ( {{ name = "level low"; kind = "tank"; point = "level"; below = {THRESHOLD};
             class = "supervisory"; }} );
''')


class Flipper(threading.Thread):
    """Moves one random sensor across the threshold every 0.1..0.4 s (seeded)."""

    def __init__(self, slave, rng):
        super().__init__(daemon=True)
        self.slave = slave
        self.rng = rng
        self.low = {u: False for u in range(1, NSENSORS + 1)}
        self.stop_flag = threading.Event()
        self.paused = threading.Event()
        self.flips = 0
        self.error = None

    def run(self):
        try:
            while not self.stop_flag.wait(self.rng.uniform(0.1, 0.4)):
                with self.slave.lock:
                    if self.paused.is_set():
                        continue
                    u = self.rng.randint(1, NSENSORS)
                    self.low[u] = not self.low[u]
                    self.slave.set(u, "holding", 0, LOW if self.low[u] else HIGH)
                    self.flips += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def pause(self):
        """No more flips once this returns."""
        with self.slave.lock:  # a flip in progress finishes first; none starts after
            self.paused.set()

    def stop(self):
        self.stop_flag.set()
        self.join(10)


def read_seq_file(state_dir):
    try:
        with open(os.path.join(state_dir, "seq")) as f:
            return int(f.read().strip())
    except FileNotFoundError:
        return 1  # the first run starts at 1


def reads_per_unit(slave):
    return {u: len(slave.reads(u)) for u in range(1, NSENSORS + 1)}


class Run:
    def __init__(self, index, first_seq, log_pos, t_spawn):
        self.index = index
        self.first_seq = first_seq
        self.log_pos = log_pos
        self.log_end = None
        self.t_spawn = t_spawn
        self.t_end = None
        self.killed = True
        self.planned_s = None
        self.reads = {}
        self.uplink_up = True
        self.quiet = False


def dedupe(messages, problems):
    """First arrival of every seq, in arrival order; duplicates must be identical."""
    first = {}
    order = []
    dups = 0
    for topic, payload, retain, t in messages:
        if not payload:
            continue  # an empty retained alarm (a clear) carries no seq
        try:
            obj = json.loads(payload)
        except ValueError:
            problems.append(f"not JSON on {topic}: {payload[:80]!r}")
            continue
        if not isinstance(obj, dict) or "seq" not in obj:
            continue  # P/status and the will carry no seq
        seq = obj["seq"]
        if seq in first:
            dups += 1
            if first[seq][0] != topic or first[seq][1] != payload:
                problems.append(f"seq {seq} reused: {first[seq][0]} {first[seq][1][:120]!r} "
                                f"and {topic} {payload[:120]!r}")
            continue
        first[seq] = (topic, payload, t, obj)
        order.append(seq)
    return first, order, dups


def stream_of(topic):
    return "alarm" if topic.startswith(ALARM_TOPICS) else "data"


def test_kill9_under_load(wd):
    rng = random.Random(SEED)
    log(f"seed {SEED}, {CRASHES} kills, commit_ms {COMMIT_MS}, {NSENSORS} sensors every "
        f"{INTERVAL_S} s, allowed telemetry loss per crash {ALLOWED_LOSS}")
    hub = Mosquitto(wd, name="hub").start()
    uplink = Mosquitto(wd, name="uplink").start()
    slave = ModbusSlave(wd, {u: {"holding": [HIGH]} for u in range(1, NSENSORS + 1)}).start()
    state_dir = os.path.join(wd.path, "state")
    witness = Collector(uplink.port, f"{PREFIX}/#")
    hub_col = Collector(hub.port, f"{PREFIX}/#")
    # The gateway reaches the uplink through a proxy that can refuse it for a whole run, so that
    # run's records reach the witness only from the store, after the next start.
    proxy = TcpProxy(uplink.port)
    gw = Gateway(wd, config(wd, hub, proxy.port, slave))
    flipper = Flipper(slave, random.Random(SEED + 1))
    flipper.start()

    runs = []
    reads_before = reads_per_unit(slave)
    t0 = time.monotonic()
    for i in range(CRASHES + 1):
        r = Run(i + 1, read_seq_file(state_dir), len(gw.output()), time.monotonic())
        runs.append(r)
        r.uplink_up = i == CRASHES or rng.random() < 0.5
        proxy.mode = "pass" if r.uplink_up else "refuse"
        # Quiet runs: no flips, so only the commit timer commits telemetry (alarm commits take
        # pending telemetry along and would hide a commit window that is too long).
        r.quiet = i < CRASHES and rng.random() < 0.3
        if r.quiet:
            flipper.pause()
        else:
            flipper.paused.clear()
        gw.start()
        assert "ERROR" not in gw.output()[r.log_pos:], gw.output()[r.log_pos:]
        if i == CRASHES:
            break
        r.planned_s = rng.uniform(QUIET_MIN_S, QUIET_MAX_S) if r.quiet else \
            rng.uniform(RUN_MIN_S, RUN_MAX_S)
        # The random run time is the stimulus (where the kill lands), not a wait for something.
        time.sleep(r.planned_s)
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait()
        gw.logf.close()
        r.t_end = time.monotonic()
        r.log_end = len(gw.output())
        after = reads_per_unit(slave)
        r.reads = {u: after[u] - reads_before[u] for u in after}
        reads_before = after
        assert flipper.error is None, flipper.error
    log(f"{CRASHES} kills in {time.monotonic() - t0:.1f} s, {flipper.flips} value flips")

    # The last run settles: final values, then the polls stop and everything must drain.
    final = runs[-1]
    final.killed = False
    flipper.stop()
    assert flipper.error is None, flipper.error
    final_low = {u: u % 3 == 0 for u in range(1, NSENSORS + 1)}
    for u, low in final_low.items():
        slave.set(u, "holding", 0, LOW if low else HIGH)
    mark = witness.mark()

    def final_values_seen():
        got = {}
        for topic, obj, _, _ in witness.json_since(mark, f"{PREFIX}/telemetry/"):
            got[topic.rsplit("/", 1)[1]] = obj["values"].get("level")
        return all(got.get(sensor(u)) == (LOW if low else HIGH) for u, low in final_low.items())

    wait_for(final_values_seen, 15, "every sensor's final value on the witness")
    for u in final_low:
        slave.command(f"silent {u}")
    after = reads_per_unit(slave)
    final.reads = {u: after[u] - reads_before[u] for u in after}
    final_telemetry = sum(final.reads.values())

    def final_run_drained():
        seen = set()
        for topic, obj, _, _ in witness.json(f"{PREFIX}/telemetry/"):
            if obj["seq"] >= final.first_seq:
                seen.add(obj["seq"])
        return len(seen) >= final_telemetry

    wait_for(final_run_drained, 20, f"the last run's {final_telemetry} readings on the witness")
    want_alarms = {f"{PREFIX}/alarms/{key(u)}" for u, low in final_low.items() if low}

    def retained_alarms(port):
        """Retained alarms whose condition holds (cleared, unacknowledged ones stay retained
        as rtn_unacked until someone acknowledges them)."""
        got = retained(port, f"{PREFIX}/alarms/#")
        alarms = {t: json.loads(p) for t, p in got.items() if p}
        return {t: a for t, a in alarms.items() if a["condition"]}

    wait_for(lambda: set(retained_alarms(uplink.port)) == want_alarms, 15,
             "retained alarms on the uplink to match the final values")
    wait_for(lambda: set(retained_alarms(hub.port)) == want_alarms, 15,
             "retained alarms on the hub to match the final values")
    final.log_end = len(gw.output())
    final.t_end = time.monotonic()
    # Wait until the hub has every event the uplink has (hub events are QoS 1 too).
    problems = []

    def event_seqs(col):
        return {obj["seq"] for _, obj, _, _ in col.json(f"{PREFIX}/events") if obj}

    try:
        wait_for(lambda: event_seqs(witness) <= event_seqs(hub_col), 10, "hub events")
    except AssertionError:
        missing = sorted(event_seqs(witness) - event_seqs(hub_col))
        problems.append(f"{len(missing)} events on the uplink never reached the hub: "
                        f"{missing[:10]}")
    for name, port in (("uplink", uplink.port), ("hub", hub.port)):
        for topic, a in retained_alarms(port).items():
            if a["state"] != "unacked" or not a["value"] < THRESHOLD:
                problems.append(f"{name}: retained {topic} is {a}")
    witness.close()
    hub_col.close()
    proxy.close()

    problems += analyse(runs, witness.all(), gw.output())
    if problems:
        raise AssertionError(f"{len(problems)} problems:\n  " + "\n  ".join(problems[:40]))


def analyse(runs, messages, gw_log):
    problems = []
    first, order, dups = dedupe(messages, problems)
    bounds = [r.first_seq for r in runs] + [runs[-1].first_seq + 10**12]
    for a, b in zip(bounds, bounds[1:]):
        if b <= a:
            problems.append(f"the seq file went backwards or stood still: {bounds[:-1]}")

    def run_of(seq):
        for k in range(len(runs)):
            if bounds[k] <= seq < bounds[k + 1]:
                return k
        return None

    # (c) order per stream in arrival order; nothing from the future.
    last = {"alarm": 0, "data": 0}
    for seq in order:
        topic, _, t, _ = first[seq]
        s = stream_of(topic)
        if seq <= last[s]:
            problems.append(f"{s} stream out of order: seq {seq} ({topic}) after {last[s]}")
        last[s] = max(last[s], seq)
        k = run_of(seq)
        if k is None:
            problems.append(f"seq {seq} ({topic}) is below the first run's {bounds[0]}")
            continue
        if t < runs[k].t_spawn:
            problems.append(f"seq {seq} ({topic}) arrived before run {k + 1}, whose block it is in,"
                            " started")

    # Seqs seen, per run (a clear's empty retained record is the seq after its event).
    seen = [set() for _ in runs]
    telemetry = [dict() for _ in runs]
    events = [[] for _ in runs]
    for seq in sorted(first):
        topic, _, _, obj = first[seq]
        k = run_of(seq)
        if k is None:
            continue
        seen[k].add(seq)
        if topic.startswith(f"{PREFIX}/telemetry/"):
            s = topic.rsplit("/", 1)[1]
            telemetry[k][s] = telemetry[k].get(s, 0) + 1
        elif topic == f"{PREFIX}/events":
            events[k].append((obj["key"], obj["transition"], obj.get("value"), seq,
                              obj["state"]))
            if obj["state"] == "normal":  # its retained record is the empty payload after it
                seen[k].add(seq + 1)

    # (a) alarms, run by run, and the per-crash table.
    # Nobody acknowledges here: a cleared alarm stays, rtn_unacked (ISA-18.2), and is restored.
    active = set()  # keys not normal after their last event
    raised = set()  # keys whose condition is on (last edge a raise)
    rows = []
    total_log_only = 0
    for k, r in enumerate(runs):
        text = gw_log[r.log_pos:r.log_end]
        logged = [(m.group(2), LOG_VERBS[m.group(1)]) for m in LOG_TRANSITION.finditer(text)]
        restored = set(LOG_RESTORED.findall(text))
        if restored != active:
            problems.append(f"run {r.index}: restored {sorted(restored)} but the alarms active on "
                            f"the witness were {sorted(active)}")
        got = [(key_, tr) for key_, tr, _, _, _ in events[k]]
        log_only = 0
        if got != logged[:len(got)]:
            problems.append(f"run {r.index}: events {got} differ from the log {logged}")
        elif len(logged) > len(got):
            # Logged, then killed before the commit: tolerated only at the very end of a killed run.
            log_only = len(logged) - len(got)
            if not r.killed or log_only > 1:
                problems.append(f"run {r.index}: logged transitions never published: "
                                f"{logged[len(got):]}")
        total_log_only += log_only
        for key_, tr, value, seq, state in events[k]:
            if state == "normal":
                active.discard(key_)
            else:
                active.add(key_)
            if tr == "chattering":
                continue
            if (tr == "raise") == (key_ in raised):
                problems.append(f"run {r.index}: {tr} of {key_} (seq {seq}) while its condition "
                                f"was {'on' if key_ in raised else 'off'}")
            if tr == "raise":
                raised.add(key_)
            else:
                raised.discard(key_)
            if (tr == "raise") != (value is not None and value < THRESHOLD):
                problems.append(f"run {r.index}: {tr} of {key_} with value {value}")
        # (b) telemetry loss, from the slave's own count of the polls it answered.
        nreads = sum(r.reads.values())
        ntele = sum(telemetry[k].values())
        lost = nreads - ntele
        for u, n in r.reads.items():
            got_u = telemetry[k].get(sensor(u), 0)
            if got_u > n:
                problems.append(f"run {r.index}: {got_u} telemetry records of {sensor(u)} but "
                                f"only {n} polls")
            if r.killed and n - got_u > ALLOWED_LOSS_SENSOR:
                problems.append(f"run {r.index}: {n - got_u} readings of {sensor(u)} lost "
                                f"(allowed {ALLOWED_LOSS_SENSOR})")
        allowed = ALLOWED_LOSS if r.killed else 0
        if lost > allowed:
            problems.append(f"run {r.index}: {lost} readings lost (allowed {allowed})")
        gaps = 0
        if seen[k]:
            lo, hi = r.first_seq, max(seen[k])
            gaps = (hi - lo + 1) - len({s for s in seen[k] if lo <= s <= hi})
            if gaps:
                missing = sorted(set(range(lo, hi + 1)) - seen[k])
                problems.append(f"run {r.index}: {gaps} seqs missing inside the run: "
                                f"{missing[:10]}")
        rows.append((r.index, ("kill" if r.killed else "settle") + ("" if r.uplink_up else "/off")
                     + ("/quiet" if r.quiet else ""),
                     r.t_end - r.t_spawn, nreads,
                     ntele, lost, gaps, len(logged), len(got), log_only, len(restored)))

    print(f"{'run':>3} {'end':>15} {'ran_s':>6} {'polls':>5} {'telem':>5} {'lost':>4} "
          f"{'gaps':>4} {'logged':>6} {'events':>6} {'log_only':>8} {'restored':>8}")
    for row in rows:
        print(f"{row[0]:>3} {row[1]:>15} {row[2]:>6.2f} {row[3]:>5} {row[4]:>5} {row[5]:>4} "
              f"{row[6]:>4} {row[7]:>6} {row[8]:>6} {row[9]:>8} {row[10]:>8}")
    crashes = [row for row in rows if row[1].startswith("kill")]
    print(f"{len(crashes)} kills; telemetry lost per kill: max {max(r[5] for r in crashes)}, "
          f"total {sum(r[5] for r in crashes)} (allowed {ALLOWED_LOSS} each); "
          f"{sum(r[8] for r in rows)} events; {dups} duplicate deliveries; "
          f"{total_log_only} transitions logged but killed before commit", flush=True)
    if sum(r[8] for r in rows) < 2 * CRASHES:
        problems.append(f"only {sum(r[8] for r in rows)} alarm events: the load is too light")
    return problems


if __name__ == "__main__":
    run([test_kill9_under_load])
