"""`vibrawatch monitor`: a board's report lines, live, with bars, alarms and a CSV log.

    code = monitor("/dev/ttyACM0", csv_path="scores.csv")   # until Ctrl-C
"""

import contextlib
import csv
import sys
import time

from . import protocol
from .board import Board, BoardError, iter_lines
from .outputs import atomic_open

BAR_WIDTH = 30
RED, GREEN, YELLOW, RESET = "\033[1;31m", "\033[32m", "\033[33m", "\033[0m"


class Display:
    """Writes one line per window: sequence, score, a bar scaled to twice the threshold."""

    def __init__(self, out, color):
        self.out = out
        self.color = color
        self.threshold = None

    def paint(self, text, code):
        return code + text + RESET if self.color else text

    def start(self, info):
        self.threshold = info.get("thr")
        self.out.write(self.paint("board started: model %s, backend %s, %s Hz x %s ch, window "
                                  "%s, threshold %s, free heap %s bytes\n" % (
                                      info.get("model"), info.get("backend"), info.get("rate"),
                                      info.get("ch"), info.get("win"), info.get("thr"),
                                      info.get("heap_free")), GREEN))

    def window(self, w):
        bar = ""
        if self.threshold and w.score == w.score:
            filled = int(min(1.0, w.score / (2 * self.threshold)) * BAR_WIDTH)
            mark = BAR_WIDTH // 2
            bar = "".join("█" if i < filled else ("|" if i == mark else "·")
                          for i in range(BAR_WIDTH))
        state = self.paint("ALARM", RED) if w.alarm else "ok   "
        notes = []
        if w.flags & protocol.FLAG_NONFINITE:
            notes.append(self.paint("NaN/inf input", YELLOW))
        if w.flags & protocol.FLAG_SATURATED:
            notes.append(self.paint("saturated", YELLOW))
        if w.dropped:
            notes.append(self.paint("%d samples dropped" % w.dropped, YELLOW))
        self.out.write("%8d %10.4g %s %s %6.1f ms %s\n" % (
            w.seq, w.score, bar, state, w.micros / 1000.0, " ".join(notes)))

    def event(self, kind, data):
        if kind == "alarm":
            text = ("ALARM RAISED at window %s (score %s)" % (data.get("seq"), data.get("score"))
                    if data["on"] else "alarm cleared at window %s" % data.get("seq"))
            self.out.write(self.paint(">>> " + text + "\n", RED if data["on"] else GREEN))
        elif kind in ("warn", "error"):
            self.out.write(self.paint("board %s: %s\n" % (kind, data), YELLOW))
        elif kind == "stop":
            self.out.write("board stopped at window %s\n" % data.get("seq"))
        else:
            self.out.write("  | %s\n" % data)
        self.out.flush()


def monitor(port, csv_path=None, out=None, windows=None, retries=3, retry_wait=1.0,
            color=None, idle_timeout=None):
    """Show the board's reports until Ctrl-C, ``windows`` windows, the board's detector
    stopping, or a lost connection.

    Returns 0 when stopped on purpose, 1 when the connection was lost and did not come back
    after ``retries`` attempts."""
    out = out or sys.stdout
    display = Display(out, out.isatty() if color is None else color)
    with contextlib.ExitStack() as stack:
        writer = None
        if csv_path:  # an old log is replaced when this one ends, not truncated at the start
            log = stack.enter_context(atomic_open(csv_path, commit_on_error=True))
            writer = csv.writer(log)
            writer.writerow(["host_time", "seq", "score", "alarm", "flags", "dropped",
                             "micros"])
        return _watch(port, display, writer, out, windows, retries, retry_wait, idle_timeout)


def _watch(port, display, writer, out, windows, retries, retry_wait, idle_timeout):
    seen = 0
    failures = 0
    try:
        while True:
            try:
                with Board(port) as board:
                    failures = 0
                    for line in iter_lines(board, idle_timeout):
                        kind, data = protocol.parse_line(line)
                        if kind == "window":
                            display.window(data)
                            if writer:
                                writer.writerow(["%.3f" % time.time(), data.seq, data.score,
                                                 int(data.alarm), data.flags, data.dropped,
                                                 data.micros])
                            seen += 1
                            if windows is not None and seen >= windows:
                                return 0
                        elif kind == "start":
                            display.start(data)
                        else:
                            display.event(kind, data)
                            if kind == "stop":  # the detector ended: nothing more will come
                                return 0
            except BoardError as exc:
                failures += 1
                if failures > retries:
                    out.write("monitor: %s; gave up after %d retries\n" % (exc, retries))
                    return 1
                out.write("monitor: %s; retrying in %.0f s (%d/%d)\n"
                          % (exc, retry_wait, failures, retries))
                time.sleep(retry_wait)
    except KeyboardInterrupt:
        return 0
