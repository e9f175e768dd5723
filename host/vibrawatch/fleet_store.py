"""The fleet's SQLite store: boards' status, alarm events and summaries (docs/mqtt.md).

    store = FleetStore("fleet.db")
    store.add("vibrawatch/pump-1/alarm", b'{"v":1,"run":"..","seq":40,...}', time.time())
    new = store.flush()          # one transaction for everything added since the last flush

One file in WAL mode (readers such as `fleet report` never block the writer), inserts batched
in one transaction per flush. Alarm events are keyed by (board, run, seq, alarm) and
summaries by (board, run, n), so a message delivered twice (QoS 1 is at-least-once) is
stored once: `duplicates` counts what was discarded. Malformed messages are counted in
`rejected`, never stored.
"""

import json
import sqlite3

from .broker import TOPIC_ROOT

SCHEMA = """
CREATE TABLE IF NOT EXISTS boards (
    id TEXT PRIMARY KEY, state TEXT, run TEXT, model TEXT, backend TEXT, rate REAL,
    thr REAL, fw TEXT, heap_free INTEGER, up_s INTEGER, dropped INTEGER,
    alarms_lost INTEGER, alarms_queued INTEGER, summaries_skipped INTEGER,
    reconnects INTEGER, alarm INTEGER, last_score REAL, last_max REAL, last_seen REAL,
    status TEXT
);
CREATE TABLE IF NOT EXISTS alarms (
    board TEXT, run TEXT, seq INTEGER, alarm INTEGER, score REAL, ms INTEGER, t INTEGER,
    received REAL, PRIMARY KEY (board, run, seq, alarm)
);
CREATE TABLE IF NOT EXISTS summaries (
    board TEXT, run TEXT, n INTEGER, first INTEGER, windows INTEGER, min REAL,
    median REAL, max REAL, above INTEGER, nan INTEGER, dropped INTEGER, alarm INTEGER,
    ms INTEGER, received REAL, PRIMARY KEY (board, run, n)
);
"""
STATUS_FIELDS = ("state", "run", "model", "backend", "rate", "thr", "fw", "heap_free", "up_s",
                 "dropped", "alarms_lost", "alarms_queued", "summaries_skipped", "reconnects",
                 "alarm")
ALARM_FIELDS = ("run", "seq", "alarm", "score", "ms", "t")
SUMMARY_FIELDS = ("run", "n", "first", "windows", "min", "median", "max", "above", "nan",
                  "dropped", "alarm", "ms")


def parse_topic(topic):
    """'vibrawatch/<board>/<kind>' -> (board, kind), or None for anything else."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != TOPIC_ROOT or not parts[1]:
        return None
    return parts[1], parts[2]


class FleetStore:
    def __init__(self, path):
        self.path = str(path)
        self.db = sqlite3.connect(self.path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, and
        # a killed process (not a power cut) loses nothing committed
        self.db.executescript(SCHEMA)
        self.pending_alarms = []
        self.pending_summaries = []
        self.pending_status = {}  # board -> fields; the newest wins
        self.pending_seen = {}  # board -> (time, median, max, alarm) from its summaries
        self.stored = 0
        self.duplicates = 0
        self.rejected = 0

    def close(self):
        self.flush()
        self.db.close()

    def add(self, topic, payload, received):
        """Queue one message for the next flush; return (board, kind, dict) or None."""
        where = parse_topic(topic)
        try:
            msg = json.loads(payload) if where else None
        except (ValueError, UnicodeDecodeError):
            msg = None
        if not isinstance(msg, dict) or msg.get("v") != 1:
            self.rejected += 1
            return None
        board, kind = where
        try:
            if kind == "alarm":
                self.pending_alarms.append((board, *[msg[f] for f in ALARM_FIELDS], received))
            elif kind == "summary":
                row = [msg[f] for f in SUMMARY_FIELDS]
                self.pending_summaries.append((board, *row, received))
                self.pending_seen[board] = (received, msg["median"], msg["max"], msg["alarm"])
            elif kind == "status":
                fields = {f: msg.get(f) for f in STATUS_FIELDS if f in msg}
                fields["status"] = payload.decode() if isinstance(payload, bytes) else payload
                fields["last_seen"] = received
                self.pending_status.setdefault(board, {}).update(fields)
            else:
                self.rejected += 1
                return None
        except KeyError:
            self.rejected += 1
            return None
        return board, kind, msg

    def flush(self):
        """Write what was added in one transaction; return the number of new rows."""
        alarms, summaries = self.pending_alarms, self.pending_summaries
        status, seen = self.pending_status, self.pending_seen
        if not (alarms or summaries or status or seen):
            return 0
        self.pending_alarms, self.pending_summaries = [], []
        self.pending_status, self.pending_seen = {}, {}
        with self.db:
            before = self.db.total_changes
            self.db.executemany("INSERT OR IGNORE INTO alarms VALUES (?,?,?,?,?,?,?,?)", alarms)
            self.db.executemany("INSERT OR IGNORE INTO summaries VALUES "
                                "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)", summaries)
            new = self.db.total_changes - before
            for board, fields in status.items():
                self._upsert(board, fields)
            for board, (t, med, mx, alarm) in seen.items():
                self._upsert(board, {"last_seen": t, "last_score": med, "last_max": mx,
                                     "alarm": alarm})
            for board, _run, _seq, alarm, *_ in alarms:
                self._upsert(board, {"alarm": alarm})
        self.duplicates += len(alarms) + len(summaries) - new
        self.stored += new
        return new

    def _upsert(self, board, fields):
        cols = sorted(fields)
        self.db.execute(
            "INSERT INTO boards (id, %s) VALUES (?, %s) ON CONFLICT(id) DO UPDATE SET %s" % (
                ", ".join(cols), ", ".join("?" * len(cols)),
                ", ".join("%s=excluded.%s" % (c, c) for c in cols)),
            [board] + [fields[c] for c in cols])

    # -- reading ---------------------------------------------------------------------------

    def boards(self):
        cur = self.db.execute("SELECT * FROM boards ORDER BY id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur]

    def alarms(self, board=None):
        sql = "SELECT board, run, seq, alarm, score, ms, t, received FROM alarms"
        args = ()
        if board:
            sql += " WHERE board = ?"
            args = (board,)
        return self.db.execute(sql + " ORDER BY received, seq", args).fetchall()

    def summaries(self, board):
        return self.db.execute("SELECT run, n, windows, min, median, max, above, dropped, alarm,"
                               " ms, received FROM summaries WHERE board = ? ORDER BY received",
                               (board,)).fetchall()

    def count(self, table):
        return self.db.execute("SELECT COUNT(*) FROM %s" % table).fetchone()[0]
