"""Scores and alarms over MQTT (docs/mqtt.md, version 1), on micropython-lib's umqtt.simple.

    # /vwatch.json, written by `vibrawatch deploy --mqtt mqtt://user:pass@host:1883`:
    # {"mqtt": {"host": "10.0.0.5", "port": 1883, "id": "pump-3", "user": "pump-3",
    #           "password": "...", "tls": false}, "wifi": {"ssid": "...", "password": "..."}}
    vwatch.run()          # reports over MQTT when /vwatch.json has an "mqtt" section

run() calls ``window(st)`` once per window with the State it has just updated. Publishing
never costs samples: each call spends at most ``budget_us`` on the network (the hop's time
less the window's processing, less a margin), enforced with socket timeouts. Alarm raises and
clears wait in a bounded queue while the broker is away (the oldest is dropped, and counted,
when it is full) and go out with QoS 1, oldest first, one at a time (a late PUBACK is waited
for over the next windows); connecting is tried with a doubling back-off (1 s to 60 s).
Summaries go out with QoS 0 every ``summary_s`` seconds; while offline they are skipped and
counted. Counts of what was dropped are in ``status`` and in `vw1 warn mqtt:` lines on the
serial console.
Costs: about 19 KB of heap on the 64-bit unix port with both precompiled (this module's code
most of it, umqtt.simple's, the queue's arrays at 17 bytes an event, the summary's scores at
4 bytes a window, a socket); per window nothing is kept: a message's JSON text is allocated
only when it is sent (tests/test_mqtt.py checks the heap does not grow).
"""

import time
from array import array

from micropython import const

CONFIG = "/vwatch.json"
_BACKOFF_MIN_MS = const(1000)
_BACKOFF_MAX_MS = const(60000)
_WARN_EVERY_MS = const(30000)  # the same problem is repeated on serial at most this often
_CONNACK = {1: "protocol version refused", 2: "client id refused", 3: "broker unavailable",
            4: "bad user name or password", 5: "not authorised (user, password or ACL)"}


def load_settings(path=CONFIG):
    """The settings file's dict, or None when there is none (no MQTT wanted)."""
    import json

    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return None


def from_settings(path=CONFIG, out=print):
    """A Reporter for the "mqtt" section of ``path``; None when it has none. A section that
    cannot work (no umqtt.simple, no host) is reported on ``out`` and gives None: detection
    runs on without it."""
    cfg = load_settings(path)
    if not cfg or "mqtt" not in cfg:
        return None
    try:
        return Reporter(cfg["mqtt"], cfg.get("wifi"), out)
    except (ImportError, ValueError, KeyError, TypeError) as e:
        out("vw1 warn mqtt: not reporting (%s): fix %s and restart" % (e, path))
        return None


class Reporter:
    def __init__(self, mqtt, wifi=None, out=print):
        try:
            from umqtt.simple import MQTTClient, MQTTException
        except ImportError:
            raise ImportError("umqtt.simple is missing: mpremote mip install umqtt.simple")
        host = mqtt.get("host")
        if not host:
            raise ValueError("no broker host")
        self.id = mqtt.get("id") or mqtt.get("user")
        if not self.id:
            raise ValueError("no board id")
        self.out = out
        self.refused = MQTTException
        tls = mqtt.get("tls", False)
        ssl = None
        if tls:
            import ssl as _ssl

            ssl = _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
            ca = mqtt.get("ca")  # without one MicroPython encrypts but verifies no broker
            if ca:
                ssl.load_verify_locations(cafile=ca)
                setattr(ssl, "verify_mode", _ssl.CERT_REQUIRED)  # (not in the ports' stubs)
        port = mqtt.get("port") or (8883 if tls else 1883)
        self.keepalive = mqtt.get("keepalive", 30)
        self.client = MQTTClient(self.id, host, port, mqtt.get("user"), mqtt.get("password"),
                                 self.keepalive, ssl)
        # The board subscribes to nothing, but a broker may still send it a PUBLISH (amqtt
        # does): umqtt hands those to the callback, which must exist
        self.client.set_callback(_ignore)
        self.topic = "vibrawatch/" + self.id + "/"
        self.t_status = self.topic + "status"
        self.t_alarm = self.topic + "alarm"
        self.t_summary = self.topic + "summary"
        self.summary_ms = int(1000 * mqtt.get("summary_s", 5))
        self.timeout_ms = mqtt.get("timeout_ms", 200)  # upper bound of one network step
        self.ack_ms = mqtt.get("ack_ms", 3000)  # no PUBACK this long: the connection is dead
        self.backoff_max = mqtt.get("backoff_max_ms", _BACKOFF_MAX_MS)
        self.awaiting = 0  # packet id of the alarm event whose PUBACK is late, 0: none
        self.sent_ms = 0
        q = mqtt.get("queue", 32)
        self.q_seq = array("l", [0] * q)  # undelivered alarm events, a ring
        self.q_score = array("f", [0] * q)
        self.q_ms = array("l", [0] * q)
        self.q_t = array("l", [0] * q)
        self.q_on = bytearray(q)
        self.q_head = 0
        self.q_len = 0
        self.wlan = None
        if wifi and wifi.get("ssid"):
            self._wifi(wifi)
        self.connected = False
        self.next_try = time.ticks_ms()
        self.backoff = _BACKOFF_MIN_MS
        self.reason = ""  # why the broker is not reachable, "" when it is
        self.warned = {}
        # Counters reported in status (docs/mqtt.md)
        self.alarms_lost = 0  # raise/clear events dropped from a full queue
        self.summaries_skipped = 0  # summaries not sent while offline
        self.reconnects = 0
        self.sent = 0

    def _wifi(self, wifi):
        import network

        self.wlan = network.WLAN(network.STA_IF)
        self.wlan.active(True)
        if not self.wlan.isconnected():
            self.wlan.connect(wifi["ssid"], wifi.get("password", ""))  # returns at once

    def __repr__(self):
        return "<Reporter %s %s queued=%d lost=%d skipped=%d %s>" % (
            self.id, "online" if self.connected else "offline", self.q_len, self.alarms_lost,
            self.summaries_skipped, self.reason)

    # -- called by vwatch.run ------------------------------------------------------------

    def start(self, m, st, rate, out=None):
        """Before the first window: what status says, the summary's buffers, a run id."""
        import os
        from binascii import hexlify

        if out is not None:
            self.out = out
        self.st = st
        self.model = m.model_id
        self.rate = rate
        self.thr = m.threshold
        self.hop_us = int(1000000 * m.hop / rate)
        self.run = hexlify(os.urandom(4)).decode()  # with seq, names an event uniquely
        cap = self.summary_ms * rate // (1000 * m.hop) + 2
        self.scores = array("f", [0] * max(4, min(int(cap), 512)))
        self.t0 = time.ticks_ms()
        self.last_summary = self.t0
        self.n_summary = 0
        self._reset_summary()
        self.alarm = 0
        self.client.set_last_will(self.t_status, '{"v":1,"state":"offline","run":"%s"}'
                                  % self.run, True, 1)

    def _reset_summary(self):
        self.count = 0  # windows since the last summary
        self.stored = 0  # scores kept for the median (the first len(scores))
        self.scored = 0
        self.lo = self.hi = 0.0
        self.above = 0
        self.nan = 0
        self.first = self.st.seq + 1
        self.drop0 = self.st.dropped

    def window(self, st):
        """Once per window, after the State was updated (see the module doc)."""
        t0 = time.ticks_us()
        self.count += 1
        if st.flags & 2:
            self.nan += 1
        else:
            if st.flags & 1:
                self.above += 1
            v = st.score
            if self.scored == 0 or v < self.lo:
                self.lo = v
            if self.scored == 0 or v > self.hi:
                self.hi = v
            self.scored += 1
            if self.stored < len(self.scores):
                self.scores[self.stored] = st.score
                self.stored += 1
        if st.alarm != self.alarm:
            self.alarm = st.alarm
            self._enqueue(st)
        budget = self.hop_us - st.micros - self.hop_us // 4
        if budget < 2000:
            budget = 2000  # a step must be possible; a slow window may then lose samples
        self._step(t0, budget)

    def stop(self):
        """After the last window: the last summary and queued alarms, then say so in status
        and disconnect (the will is not sent). Bounded by timeout_ms per message."""
        t0 = time.ticks_us()
        for _ in range(self.q_len + 1):
            if not (self.q_len and self.connected):
                break
            self._step(t0, self.timeout_ms * 1000)  # resends, or waits for a late PUBACK
            t0 = time.ticks_us()
        if self.connected:
            try:
                self._settimeout(self.timeout_ms * 1000)
                if self.count:
                    self.client.publish(self.t_summary, self._summary(time.ticks_ms()))
                self.client.publish(self.t_status, self._status("stopped"), True, 1)
                self.client.disconnect()
            except Exception:
                pass
            self.connected = False

    # -- the queue of alarm events -------------------------------------------------------

    def _enqueue(self, st):
        n = len(self.q_seq)
        if self.q_len == n:  # full: the oldest event goes, and is counted
            self.q_head = (self.q_head + 1) % n
            self.q_len -= 1
            self.alarms_lost += 1
            self._warn("lost", "%d alarm events dropped: queue of %d full while the broker "
                       "was away" % (self.alarms_lost, n))
        i = (self.q_head + self.q_len) % n
        self.q_seq[i] = st.seq
        self.q_score[i] = st.score
        self.q_ms[i] = time.ticks_diff(time.ticks_ms(), self.t0)
        self.q_t[i] = int(time.time())
        self.q_on[i] = st.alarm
        self.q_len += 1

    # -- the network ---------------------------------------------------------------------

    def _left(self, t0, budget):
        return budget - time.ticks_diff(time.ticks_us(), t0)

    def _settimeout(self, us):
        self.client.sock.settimeout(self._clamp(us) / 1000000)

    def _clamp(self, us):
        # a step that starts late still gets 1 ms (a timeout <= 0 would be an error or block)
        return 1000 if us < 1000 else min(us, self.timeout_ms * 1000)

    def _step(self, t0, budget):
        now = time.ticks_ms()
        if not self.connected:
            if time.ticks_diff(now, self.next_try) < 0:
                self._skip_summary(now)
                return
            if not self._connect(t0, budget):
                self._skip_summary(now)
                return
        try:
            if self.q_len and self._left(t0, budget) > 0:
                self._publish_alarm(t0, budget)
            if (time.ticks_diff(now, self.last_summary) >= self.summary_ms
                    and self._left(t0, budget) > 0):
                self._settimeout(self._left(t0, budget))
                self.client.publish(self.t_summary, self._summary(now))
                self.sent += 1
                if self.n_summary % 12 == 0:  # status again now and then: uptime, heap
                    self.client.publish(self.t_status, self._status("online"), True)
        except Exception as e:  # OSError (timeout, reset), or umqtt's asserts on garbage
            self._lost("connection lost (%s)" % _why(e))

    def _connect(self, t0, budget):
        if self.wlan is not None and not self.wlan.isconnected():
            self._retry_later("Wi-Fi not connected")
            return False
        c = self.client
        try:
            c.connect(timeout=self._clamp(self._left(t0, budget)) / 1000000)
            self._settimeout(self._left(t0, budget))
            c.publish(self.t_status, self._status("online"), True)
        except Exception as e:
            why = _why(e)
            if isinstance(e, self.refused):
                why = "broker refused: " + _CONNACK.get(e.args[0], "code %s" % e.args[0])
            self._close()
            self._retry_later(why)
            return False
        self.connected = True
        self.backoff = _BACKOFF_MIN_MS
        if self.reason:
            self.out("vw1 warn mqtt: connected to the broker again (%s before); %d alarm "
                     "events to send, %d lost, %d summaries skipped since start"
                     % (self.reason, self.q_len, self.alarms_lost, self.summaries_skipped))
            self.reconnects += 1
        self.reason = ""
        return True

    def _publish_alarm(self, t0, budget):
        # umqtt's publish(qos=1) sends, then reads until the PUBACK; when the budget runs out
        # first (a slow or stopped broker) the event stays queued and later windows go on
        # reading for that PUBACK (umqtt.wait_msg); after ack_ms without one the connection
        # is dropped and the event sent again on the next (a duplicate the host discards).
        c = self.client
        if self.awaiting:
            self._settimeout(self._left(t0, budget))
            try:
                op = c.wait_msg()
            except OSError as e:
                if e.args and e.args[0] in (11, 110):  # EAGAIN, ETIMEDOUT: nothing yet
                    if time.ticks_diff(time.ticks_ms(), self.sent_ms) > self.ack_ms:
                        raise OSError(110)
                    return
                raise
            if op != 0x40:
                return
            c.sock.read(1)  # the PUBACK's length byte (2), then its packet id
            pid = c.sock.read(2)
            if pid[0] << 8 | pid[1] == self.awaiting:
                self._acked()
            return
        i = self.q_head
        msg = '{"v":1,"run":"%s","seq":%d,"alarm":%d,"score":%.4g,"ms":%d,"t":%d}' % (
            self.run, self.q_seq[i], self.q_on[i], self.q_score[i], self.q_ms[i], self.q_t[i])
        self._settimeout(self._left(t0, budget))
        self.sent_ms = time.ticks_ms()
        if c.pid >= 0xFFFF:
            c.pid = 0  # packet ids are 16 bits (1..65535); umqtt would count on past them
        try:
            c.publish(self.t_alarm, msg, False, 1)  # returns once the broker acked
        except OSError as e:
            if e.args and e.args[0] in (11, 110):
                self.awaiting = c.pid  # sent; its PUBACK is late
                return
            raise
        self._acked()

    def _acked(self):
        self.awaiting = 0
        self.q_head = (self.q_head + 1) % len(self.q_seq)
        self.q_len -= 1
        self.sent += 1

    def _skip_summary(self, now):
        if time.ticks_diff(now, self.last_summary) >= self.summary_ms:
            self.summaries_skipped += 1
            self.n_summary += 1
            self.last_summary = now
            self._reset_summary()

    def _lost(self, why):
        self.awaiting = 0  # unacknowledged: sent again after reconnecting
        self._close()
        self.connected = False
        self._retry_later(why)

    def _close(self):
        try:
            self.client.sock.close()
        except Exception:
            pass
        self.client.sock = None

    def _retry_later(self, why):
        self.next_try = time.ticks_add(time.ticks_ms(), self.backoff)
        self.backoff = min(2 * self.backoff, self.backoff_max)
        if why != self.reason:
            self.reason = why
            self._warn(why, "%s; detection goes on, %d alarm events queued, retrying in %d s"
                       % (why, self.q_len, self.backoff // 2000 or 1), force=True)

    def _warn(self, key, text, force=False):
        now = time.ticks_ms()
        last = self.warned.get(key)
        if force or last is None or time.ticks_diff(now, last) >= _WARN_EVERY_MS:
            self.warned[key] = now
            self.out("vw1 warn mqtt: " + text)

    # -- payloads (docs/mqtt.md) ---------------------------------------------------------

    def _summary(self, now):
        n = self.stored
        med = _median(self.scores, n) if n else 0.0  # reorders scores[:n]
        lo = self.lo
        hi = self.hi
        msg = ('{"v":1,"run":"%s","n":%d,"first":%d,"windows":%d,"min":%.4g,"median":%.4g,'
               '"max":%.4g,"above":%d,"nan":%d,"dropped":%d,"alarm":%d,"ms":%d}' % (
                   self.run, self.n_summary, self.first, self.count, lo, med, hi, self.above,
                   self.nan, self.st.dropped - self.drop0, self.alarm,
                   time.ticks_diff(now, self.t0)))
        self.n_summary += 1
        self.last_summary = now
        self._reset_summary()
        return msg

    def _status(self, state):
        import gc
        import sys

        gc.collect()  # a true heap figure; status goes out rarely (connect, every minute)
        v = sys.implementation.version
        st = self.st
        return ('{"v":1,"state":"%s","run":"%s","model":"%s","backend":"%s","rate":%g,'
                '"thr":%.4g,"fw":"%d.%d.%d","up_s":%d,"heap_free":%d,"heap_used":%d,'
                '"seq":%d,"alarm":%d,"dropped":%d,"alarms_queued":%d,"alarms_lost":%d,'
                '"summaries_skipped":%d,"reconnects":%d}' % (
                    state, self.run, self.model, st.backend, self.rate, self.thr, v[0], v[1],
                    v[2], time.ticks_diff(time.ticks_ms(), self.t0) // 1000, gc.mem_free(),
                    gc.mem_alloc(), st.seq, st.alarm, st.dropped, self.q_len, self.alarms_lost,
                    self.summaries_skipped, self.reconnects))


def _ignore(topic, msg):
    pass


def _why(e):
    if isinstance(e, OSError) and e.args:
        code = e.args[0]
        return {110: "timed out", 111: "connection refused", 104: "connection reset",
                113: "no route to host", 32: "broken pipe", -1: "closed by the broker"}.get(
                    code, "OSError %s" % code)
    return "%s %s" % (type(e).__name__, e)


def _median(a, n):
    # Quickselect in place on a[:n] (no allocation): the middle element (upper for even n).
    k = n // 2
    lo = 0
    hi = n - 1
    while lo < hi:
        p = a[(lo + hi) // 2]
        i = lo
        j = hi
        while i <= j:
            while a[i] < p:
                i += 1
            while a[j] > p:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]
