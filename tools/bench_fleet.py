"""Load benchmark of the fleet path: N simulated boards -> Mosquitto (loopback) -> one
`vibrawatch fleet` subscriber -> SQLite. Prints a table; not a test.

    .venv/bin/python tools/bench_fleet.py                      # N = 100, 300, 1000, 2000
    .venv/bin/python tools/bench_fleet.py --boards 50,500 --seconds 20 --summary-s 5

Each simulated board is a paho client with its own user (the broker's ACL keeps it under
vibrawatch/<id>/), publishing what a board publishes (docs/mqtt.md), at a board's pace: a
retained status on connect, a summary every --summary-s seconds (QoS 0) and an alarm raise or
clear every --alarm-s seconds (QoS 1), starting at random offsets. One real `vibrawatch fleet`
process stores everything. A row passes when every alarm the broker acknowledged is stored
and at least 99.9 % of the summaries published are, once the subscriber has worked off its
backlog (the drain column: a subscriber that lags is slow, not lossy). The flood row then measures what the one
subscriber ingests per second: every board publishes its summaries back to back, and the rate
is stored rows over the span of their receive times.
"""

import argparse
import json
import multiprocessing
import os
import random
import selectors
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))

from vibrawatch.broker import Mosquitto  # noqa: E402


def board_worker(port, names, password, seconds, summary_s, alarm_s, flood, result):
    """Run simulated boards `names` in one process with paho's external-loop API."""
    import paho.mqtt.client as mqtt

    sel = selectors.DefaultSelector()
    boards = []
    for name in names:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
        c.username_pw_set(name, password)
        c.will_set("vibrawatch/%s/status" % name, '{"v":1,"state":"offline","run":"b"}', 1,
                   True)
        st = {"name": name, "summaries": 0, "alarms_sent": set(), "alarms_acked": 0,
              "n": 0, "seq": 0, "alarm": 0, "client": c,
              "next_summary": time.monotonic() + random.uniform(0, summary_s),
              "next_alarm": time.monotonic() + random.uniform(0, alarm_s)}
        c.on_publish = (lambda s: lambda cl, u, mid, rc, props: _acked(s, mid))(st)
        c.connect("127.0.0.1", port, keepalive=60)
        sel.register(c.socket(), selectors.EVENT_READ, st)
        boards.append(st)
    for st in boards:
        st["client"].publish("vibrawatch/%s/status" % st["name"], json.dumps(
            {"v": 1, "state": "online", "run": "b", "model": "bench", "backend": "sim"}),
            qos=0, retain=True)
    end = time.monotonic() + seconds
    last_misc = 0.0
    while time.monotonic() < end:
        now = time.monotonic()
        for st in boards:
            c = st["client"]
            if flood or now >= st["next_summary"]:
                st["next_summary"] += summary_s
                info = c.publish("vibrawatch/%s/summary" % st["name"], json.dumps(
                    {"v": 1, "run": "b", "n": st["n"], "first": st["seq"], "windows": 39,
                     "min": 8.3, "median": 18.0, "max": 41.2, "above": 0, "nan": 0,
                     "dropped": 0, "alarm": st["alarm"], "ms": int(now * 1000)}))
                if info.rc == mqtt.MQTT_ERR_SUCCESS:
                    st["summaries"] += 1
                st["n"] += 1
                st["seq"] += 39
            if not flood and now >= st["next_alarm"]:
                st["next_alarm"] += alarm_s
                st["alarm"] ^= 1
                info = c.publish("vibrawatch/%s/alarm" % st["name"], json.dumps(
                    {"v": 1, "run": "b", "seq": st["seq"], "alarm": st["alarm"], "score": 88.0,
                     "ms": int(now * 1000), "t": int(time.time())}), qos=1)
                st["alarms_sent"].add(info.mid)
            if c.want_write():
                c.loop_write()
        for key, _ in sel.select(timeout=0.001 if flood else 0.01):
            key.data["client"].loop_read()
        if now - last_misc > 1.0:
            last_misc = now
            for st in boards:
                st["client"].loop_misc()
    # let the last acks come in
    drain = time.monotonic() + 3
    while time.monotonic() < drain:
        for st in boards:
            if st["client"].want_write():
                st["client"].loop_write()
        for key, _ in sel.select(timeout=0.05):
            key.data["client"].loop_read()
    result.put([(st["name"], st["summaries"], st["alarms_acked"], len(st["alarms_sent"]))
                for st in boards])
    for st in boards:
        st["client"].disconnect()


def _acked(st, mid):
    if mid in st["alarms_sent"]:
        st["alarms_acked"] += 1


def _drain(db, quiet_s=3.0, limit_s=120.0):
    """Seconds until the store stops growing (no new row for quiet_s), at most limit_s."""
    start = time.monotonic()
    last, still = -1, time.monotonic()
    while time.monotonic() - start < limit_s:
        try:
            con = sqlite3.connect(db)
            rows = sum(con.execute("SELECT COUNT(*) FROM %s" % t).fetchone()[0]
                       for t in ("alarms", "summaries"))
            con.close()
        except sqlite3.Error:
            rows = last
        if rows != last:
            last, still = rows, time.monotonic()
        elif time.monotonic() - still >= quiet_s:
            break
        time.sleep(0.5)
    return max(0.0, still - start)


def run(n, seconds, summary_s, alarm_s, workers, flood=False, keep=None):
    folder = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    names = ["b%05d" % i for i in range(n)]
    password = "bench-pw"
    users = {name: password for name in names}
    users["fleet"] = "fleet-pw"
    broker = Mosquitto(folder / "broker", users, readers=["fleet"], max_queued=100000).start()
    db = folder / "fleet.db"
    sub = subprocess.Popen([sys.executable, "-m", "vibrawatch", "fleet", "--broker",
                            broker.url("fleet"), "--db", str(db), "--client-id", "bench"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.5)
    result = multiprocessing.Queue()
    chunks = [names[i::workers] for i in range(workers)]
    procs = [multiprocessing.Process(target=board_worker, args=(
        broker.port, chunk, password, seconds, summary_s, alarm_s, flood, result))
        for chunk in chunks if chunk]
    for p in procs:
        p.start()
    rows = []
    for _ in procs:
        rows += result.get(timeout=seconds + 120)
    for p in procs:
        p.join()
    drain = _drain(db)  # a subscriber that lags is slow, not lossy: wait until it is done
    sub.send_signal(signal.SIGINT)
    sub.wait(timeout=60)
    broker.stop()
    con = sqlite3.connect(db)
    stored_s = con.execute("SELECT COUNT(*) FROM summaries").fetchone()[0]
    stored_a = con.execute("SELECT COUNT(*) FROM alarms").fetchone()[0]
    t_first, t_last = con.execute("SELECT MIN(received), MAX(received) FROM summaries"
                                  ).fetchone()
    con.close()
    sent_s = sum(r[1] for r in rows)
    acked_a = sum(r[2] for r in rows)
    span = (t_last - t_first) if t_first is not None else 0
    return {"n": n, "offered": (sent_s + sum(r[3] for r in rows)) / seconds,
            "sent_s": sent_s, "stored_s": stored_s, "acked_a": acked_a, "stored_a": stored_a,
            "ingest": stored_s / span if span > 0 else 0.0, "drain": drain}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", default="100,300,1000,2000",
                    help="comma-separated board counts")
    ap.add_argument("--seconds", type=float, default=30.0, help="publishing time per row")
    ap.add_argument("--summary-s", type=float, default=5.0, help="seconds between summaries")
    ap.add_argument("--alarm-s", type=float, default=10.0,
                    help="seconds between a board's alarm events (far more than a plant has)")
    ap.add_argument("--workers", type=int, default=2, help="processes simulating boards")
    ap.add_argument("--flood-boards", type=int, default=200,
                    help="boards in the flood row (0: no flood row)")
    args = ap.parse_args()
    print("fleet load on %s, %d CPUs: boards -> Mosquitto (loopback) -> one `vibrawatch fleet`"
          " -> SQLite; %g s per row, a summary every %g s, an alarm event every %g s per board"
          % (os.uname().nodename, os.cpu_count(), args.seconds, args.summary_s, args.alarm_s))
    head = "%7s %10s %10s %10s %9s %10s %10s %9s %8s %5s" % (
        "boards", "offered/s", "summaries", "stored", "stored%", "alarms ok", "stored",
        "ingest/s", "drain s", "pass")
    print(head)
    best = None
    for n in [int(x) for x in args.boards.split(",")]:
        r = run(n, args.seconds, args.summary_s, args.alarm_s, args.workers)
        pct = 100.0 * r["stored_s"] / max(1, r["sent_s"])
        ok = r["stored_a"] >= r["acked_a"] and pct >= 99.9
        best = n if ok else best
        print("%7d %10.0f %10d %10d %8.2f%% %10d %10d %9.0f %8.1f %5s" % (
            n, r["offered"], r["sent_s"], r["stored_s"], pct, r["acked_a"], r["stored_a"],
            r["ingest"], r["drain"], "yes" if ok else "NO"), flush=True)
    if args.flood_boards:
        r = run(args.flood_boards, 5.0, 0.0, 1e9, args.workers, flood=True)
        pct = 100.0 * r["stored_s"] / max(1, r["sent_s"])
        print("%7s %10.0f %10d %10d %8.2f%% %10s %10s %9.0f %8.1f %5s" % (
            "flood", r["offered"], r["sent_s"], r["stored_s"], pct, "-", "-", r["ingest"],
            r["drain"], "-"))
    print("largest N that passed: %s; ingest/s: summaries stored per second of receive time; "
          "drain s: how long the subscriber went on storing after the boards stopped (its "
          "backlog); load average at the end: %.1f" % (best, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
