"""The alarm rule of docs/model-format.md, one window at a time: the host's twin of the board's
vwatch.alarm.Alarm, decision for decision (tests/test_runtime.py checks the two agree).

Raise when k of the last n windows score above the threshold; once raised, clear when no window
of the last n scores above the clear threshold. Here two n-bit masks hold the recent history
(n <= 32; Python ints have no word size); the board keeps the last n decisions in a bytearray
with running counts instead, as 2^32 is no small int on a 32-bit board.

    state = AlarmState()
    for s in scores:
        alarm = alarm_step(state, s, threshold, clear, k, n)
"""

import numpy as np


class AlarmState:
    """History bits (bit 0 = the newest window) and whether the alarm is raised."""

    __slots__ = ("above", "over_clear", "raised")

    def __init__(self):
        self.above = 0  # windows above the threshold
        self.over_clear = 0  # windows above the clear threshold
        self.raised = False

    def __repr__(self):
        return "AlarmState(raised=%s, above=%s)" % (self.raised, bin(self.above))


def alarm_step(state, score, threshold, clear, k, n):
    """Feed one window's score; returns True while the alarm is raised."""
    mask = (1 << n) - 1
    state.above = ((state.above << 1) | (score > threshold)) & mask
    state.over_clear = ((state.over_clear << 1) | (score > clear)) & mask
    if not state.raised:
        if bin(state.above).count("1") >= k:
            state.raised = True
    elif state.over_clear == 0:
        state.raised = False
    return state.raised


def alarm_states(scores, threshold, clear, k, n):
    """Alarm state after each window of one recording (a fresh state at its start)."""
    state = AlarmState()
    return np.array([alarm_step(state, float(s), threshold, clear, k, n) for s in scores], bool)


def alarm_spans(states):
    """(first, last) window indices of each run of raised alarm states."""
    spans, start = [], None
    for i, on in enumerate(states):
        if on and start is None:
            start = i
        elif not on and start is not None:
            spans.append((start, i - 1))
            start = None
    if start is not None:
        spans.append((start, len(states) - 1))
    return spans


def raises(states):
    """Number of times the alarm was raised (off -> on transitions)."""
    return len(alarm_spans(states))
