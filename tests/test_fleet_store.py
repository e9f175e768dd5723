"""The fleet's SQLite store, live table and report on messages in the format of docs/mqtt.md
(what boards send is checked end to end in tests/test_mqtt.py)."""

import json
import subprocess
import sys

from vibrawatch.fleet import render_table
from vibrawatch.fleet_store import FleetStore


def alarm(run, seq, on, score):
    return json.dumps({"v": 1, "run": run, "seq": seq, "alarm": on, "score": score, "ms": seq,
                       "t": 0}).encode()


def summary(run, n, med, mx, alarm_on=0):
    return json.dumps({"v": 1, "run": run, "n": n, "first": 10 * n, "windows": 10, "min": 1.0,
                       "median": med, "max": mx, "above": int(mx > 50), "nan": 0,
                       "dropped": 0, "alarm": alarm_on, "ms": 1000 * n}).encode()


def status(run, state, **kw):
    fields = {"v": 1, "state": state, "run": run, "model": "0717f1e4", "backend": "pure",
              "rate": 20000, "thr": 50.0, "dropped": 3, "alarms_lost": 1,
              "summaries_skipped": 2}
    fields.update(kw)
    return json.dumps(fields).encode()


def fill(store):
    t = 1000.0
    store.add("vibrawatch/pump-1/status", status("r1", "online"), t)
    store.add("vibrawatch/pump-2/status", status("r2", "online"), t)
    for n in range(20):
        store.add("vibrawatch/pump-1/summary", summary("r1", n, 10 + n, 20 + 5 * n), t + n)
        store.add("vibrawatch/pump-2/summary", summary("r2", n, 8, 12), t + n)
    store.add("vibrawatch/pump-1/alarm", alarm("r1", 120, 1, 88.0), t + 12)
    store.add("vibrawatch/pump-1/alarm", alarm("r1", 120, 1, 88.0), t + 13)  # a QoS 1 resend
    store.add("vibrawatch/pump-1/alarm", alarm("r1", 170, 0, 20.0), t + 17)
    store.add("vibrawatch/pump-1/alarm", alarm("r1", 190, 1, 95.0), t + 19)
    store.add("vibrawatch/pump-1/alarm", b"not json", t + 19)
    store.add("vibrawatch/pump-1/other", summary("r1", 0, 1, 1), t + 19)
    store.add("elsewhere/pump-1/alarm", alarm("r1", 1, 1, 1.0), t + 19)
    return store.flush()


def test_store_keeps_each_event_once_and_rejects_what_is_not_the_format(tmp_path):
    store = FleetStore(tmp_path / "f.db")
    assert fill(store) == 43
    assert store.duplicates == 1 and store.rejected == 3
    assert [(r[2], r[3]) for r in store.alarms("pump-1")] == [(120, 1), (170, 0), (190, 1)]
    # a second delivery of everything (a subscriber's session replayed) adds nothing
    assert fill(store) == 0
    store.close()
    again = FleetStore(tmp_path / "f.db")  # another process sees the same rows (WAL)
    assert again.count("summaries") == 40
    (p1, p2) = again.boards()
    assert (p1["id"], p1["alarm"], p1["last_score"], p1["last_max"]) == ("pump-1", 1, 29, 115)
    assert p2["alarm"] == 0 and p2["dropped"] == 3


def test_live_table_highlights_boards_in_alarm(tmp_path):
    store = FleetStore(tmp_path / "f.db")
    fill(store)
    text = render_table(store.boards(), now=1025.0)
    lines = text.splitlines()
    assert lines[0].split() == ["board", "model", "state", "score", "max", "alarm", "last",
                                "seen", "drops"]
    assert lines[1].startswith(" !!pump-1") and "ALARM" in lines[1] and "6 s ago" in lines[1]
    assert lines[2].startswith("   pump-2") and "ALARM" not in lines[2]
    assert "3/1/2" in lines[2]
    coloured = render_table(store.boards(), color=True, now=1025.0).splitlines()
    assert "\x1b[1;37;41m" in coloured[1] and "\x1b[" not in coloured[2]


def test_fleet_report_writes_trends_timeline_and_markdown(tmp_path):
    store = FleetStore(tmp_path / "f.db")
    fill(store)
    store.close()
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "vibrawatch", "fleet", "report", "--db",
                           tmp_path / "f.db", "-o", out], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    md = (out / "report.md").read_text()
    assert "| pump-1 | 0717f1e4 | online | 20 | 200 | 2 | 3 | 1 | 2 |" in md
    assert "| pump-1 | r1 | 120 | raised | 88 | 12.0 |" in md
    for png in ("alarm-timeline.png", "trend-pump-1.png", "trend-pump-2.png"):
        assert (out / png).stat().st_size > 5000


def test_fleet_report_without_a_database_says_what_to_do(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vibrawatch", "fleet", "report", "--db",
                           tmp_path / "none.db", "-o", tmp_path], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "run `vibrawatch fleet --broker" in proc.stderr
