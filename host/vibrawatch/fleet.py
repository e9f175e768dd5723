"""`vibrawatch fleet`: subscribe to every board's MQTT reports, store them, show a live table.

    sub = FleetSubscriber(parse_url("mqtt://fleet:pw@10.0.0.5"), FleetStore("fleet.db"))
    sub.run(seconds=60, on_tick=print_table)      # or until Ctrl-C

Topics and payloads: docs/mqtt.md. The subscriber keeps a persistent session (clean session
off, a fixed client id, QoS 1), so alarm events published while it is down wait at the broker;
it acknowledges a QoS 1 message only once the batch holding it is committed to SQLite, so a
subscriber killed at any moment loses nothing it had acknowledged. With ``share`` several
subscribers split alarms and summaries between them (MQTT shared subscriptions,
$share/<group>/...); each still reads every board's retained status, which shared
subscriptions do not deliver.
"""

import os
import queue
import sys
import time

from .broker import TOPIC_ROOT
from .errors import VibrawatchError

BATCH = 500  # messages per transaction at most
FLUSH_S = 0.2  # ... and at least this often when messages come in


def _paho():
    try:
        import paho.mqtt.client as mqtt
    except ImportError as exc:
        raise VibrawatchError("paho-mqtt is not installed: pip install 'vibrawatch[fleet]'"
                              ) from exc
    return mqtt


class FleetSubscriber:
    def __init__(self, url, store, client_id="vibrawatch-fleet", share=None):
        mqtt = _paho()
        self.url = url
        self.store = store
        self.share = share
        self.inbox = queue.Queue()
        self.connected = False
        self.refused = None
        self.received = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=False, manual_ack=True)
        password = url.password or os.environ.get("VIBRAWATCH_MQTT_PASSWORD")
        if url.user:
            self.client.username_pw_set(url.user, password)
        if url.tls:
            self.client.tls_set()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.5, 10)

    def topics(self):
        data = ["%s/+/alarm" % TOPIC_ROOT, "%s/+/summary" % TOPIC_ROOT]
        if self.share:
            data = ["$share/%s/%s" % (self.share, t) for t in data]
        return [("%s/+/status" % TOPIC_ROOT, 1)] + [(t, 1) for t in data]

    def _on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            self.refused = str(reason)
            return
        self.refused = None
        self.connected = True
        client.subscribe(self.topics())  # again on every connect: a lost session has none

    def _on_disconnect(self, client, userdata, flags, reason, properties):
        self.connected = False

    def _on_message(self, client, userdata, msg):
        self.inbox.put((msg.topic, msg.payload, msg.mid, msg.qos, time.time()))

    def connect(self, timeout=10.0):
        try:
            self.client.connect(self.url.host, self.url.port, keepalive=30)
        except OSError as exc:
            raise VibrawatchError("cannot reach the broker at %s (%s): is it running, and the "
                                  "host and port right?" % (self.url, exc)) from exc
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while not self.connected and time.monotonic() < deadline:
            if self.refused:
                self.close()
                raise VibrawatchError("the broker at %s refused the connection: %s (check "
                                      "the user and password)" % (self.url, self.refused))
            time.sleep(0.02)
        if not self.connected:
            self.close()
            raise VibrawatchError("no answer from the broker at %s within %g s"
                                  % (self.url, timeout))

    def close(self):
        self.client.loop_stop()
        try:
            self.client.disconnect()
        except Exception:
            pass

    def pump(self, wait=FLUSH_S, on_message=None):
        """Store what arrived (waiting up to ``wait`` s for the first message), commit, then
        acknowledge the QoS 1 messages; return the number of messages handled."""
        got = []
        try:
            got.append(self.inbox.get(timeout=wait))
            while len(got) < BATCH:
                got.append(self.inbox.get_nowait())
        except queue.Empty:
            pass
        for topic, payload, _mid, _qos, received in got:
            parsed = self.store.add(topic, payload, received)
            if parsed and on_message:
                on_message(*parsed)
        self.store.flush()
        for _topic, _payload, mid, qos, _received in got:
            if qos:
                self.client.ack(mid, qos)
        self.received += len(got)
        return len(got)

    def run(self, seconds=None, on_tick=None, tick_s=1.0, on_message=None):
        """Pump until ``seconds`` have passed (None: until Ctrl-C); on_tick every tick_s."""
        end = None if seconds is None else time.monotonic() + seconds
        next_tick = time.monotonic()
        while end is None or time.monotonic() < end:
            self.pump(on_message=on_message)
            if on_tick and time.monotonic() >= next_tick:
                on_tick()
                next_tick = time.monotonic() + tick_s
        # what is still in the inbox: stored before leaving
        while self.pump(wait=0.05, on_message=on_message):
            pass


# -- the live table ------------------------------------------------------------------------

HEAD = ("board", "model", "state", "score", "max", "alarm", "last seen", "drops")
RED = "\x1b[1;37;41m"
RESET = "\x1b[0m"


def table_rows(boards, now=None):
    """The live table's cells for each board (see the README's 'The fleet view')."""
    now = time.time() if now is None else now
    rows = []
    for b in boards:
        seen = b.get("last_seen")
        drops = "%d/%d/%d" % (b.get("dropped") or 0, b.get("alarms_lost") or 0,
                              b.get("summaries_skipped") or 0)
        rows.append((b["id"], b.get("model") or "?", b.get("state") or "?",
                     _num(b.get("last_score")), _num(b.get("last_max")),
                     "ALARM" if b.get("alarm") else "-",
                     "%.0f s ago" % (now - seen) if seen else "never", drops))
    return rows


def _num(x):
    return "%.4g" % x if x is not None else "-"


def render_table(boards, color=False, now=None):
    """The table as text; rows of boards in alarm in red (color) or marked '!!'."""
    rows = table_rows(boards, now)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(HEAD)]
    fmt = "  ".join("%%-%ds" % w for w in widths)
    lines = ["   " + fmt % HEAD]
    for row in rows:
        alarm = row[5] == "ALARM"
        text = fmt % row
        if alarm and color:
            lines.append(" " + RED + "!!" + text + RESET)
        else:
            lines.append((" !!" if alarm else "   ") + text)
    lines.append("   drops = samples dropped / alarm events lost / summaries skipped "
                 "(board counts)")
    return "\n".join(lines)


def live_printer(store, stream=sys.stdout):
    """on_tick for a terminal: redraw the table in place; elsewhere, nothing (see events)."""
    tty = stream.isatty()

    def tick():
        if tty:
            stream.write("\x1b[H\x1b[2J" + time.strftime("vibrawatch fleet  %H:%M:%S\n\n")
                         + render_table(store.boards(), color=True) + "\n")
            stream.flush()

    return tick


def event_printer(stream=sys.stdout):
    """on_message for a log: one line per alarm event and per change of a board's state."""
    states = {}

    def on_message(board, kind, msg):
        if kind == "alarm":
            stream.write("%s ALARM %s on %s at window %d (score %.4g)\n" % (
                time.strftime("%H:%M:%S"), "RAISED" if msg["alarm"] else "cleared", board,
                msg["seq"], msg["score"]))
        elif kind == "status" and states.get(board) != msg.get("state"):
            states[board] = msg.get("state")
            stream.write("%s %s is %s\n" % (time.strftime("%H:%M:%S"), board, states[board]))
        else:
            return
        stream.flush()

    return on_message
