"""Parsing the board's serial report lines (docs/protocol.md, version 1).

    kind, fields = parse_line("w,12,3.5,0,0,0,8412")
    # ("window", Window(seq=12, score=3.5, alarm=False, flags=0, dropped=0, micros=8412))
"""

import math
from dataclasses import dataclass

FLAG_ABOVE, FLAG_NONFINITE, FLAG_SATURATED, FLAG_RETRIED = 1, 2, 4, 8


@dataclass(frozen=True)
class Window:
    seq: int
    score: float
    alarm: bool
    flags: int
    dropped: int
    micros: int

    @property
    def above(self):
        return bool(self.flags & FLAG_ABOVE)


def _number(text):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def parse_fields(words):
    """'key=value' words -> dict, numbers converted; words without '=' are skipped."""
    out = {}
    for word in words:
        key, sep, value = word.partition("=")
        if sep:
            out[key] = _number(value)
    return out


def parse_line(line):
    """Classify one line: ('window', Window), ('start'|'alarm'|'warn'|'error'|'stop', data),
    or ('other', text) for anything that is not protocol (shown as is)."""
    text = line.rstrip("\r\n")
    if text.startswith("w,"):
        parts = text.split(",")
        if len(parts) == 7:
            try:
                score = float(parts[2])
                return "window", Window(int(parts[1]), score if math.isfinite(score) else
                                        float("nan"), parts[3] == "1", int(parts[4]),
                                        int(parts[5]), int(parts[6]))
            except ValueError:
                pass
        return "other", text
    if text.startswith("vw1 "):
        words = text.split()
        kind = words[1] if len(words) > 1 else ""
        if kind == "start":
            return "start", parse_fields(words[2:])
        if kind == "alarm" and len(words) > 2:
            data = parse_fields(words[3:])
            data["on"] = words[2] == "on"
            return "alarm", data
        if kind in ("warn", "error"):
            return kind, " ".join(words[2:])
        if kind == "stop":
            return "stop", parse_fields(words[2:])
    return "other", text
