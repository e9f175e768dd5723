"""The alarm rule of docs/model-format.md, one window at a time: the board's twin of the host's
vibrawatch.alarm.alarm_step, decision for decision.

    from vwatch.alarm import Alarm
    a = Alarm(k=3, n=5, threshold=41.5, clear=30.0)
    raised = a.step(score)           # True while the alarm is raised

Raise when k of the last n windows score above the threshold; once raised, clear when no window
of the last n scores above the clear threshold. The history starts as n windows below both.
The host keeps two n-bit shift registers; n may be 32, which is no small int on a 32-bit board,
so here the last n decisions sit in a bytearray (bit 1: above the threshold, bit 2: above the
clear threshold) with running counts of each. Costs: n bytes; `step` allocates nothing.
"""


class Alarm:
    def __init__(self, k, n, threshold, clear):
        if not 1 <= k <= n:
            raise ValueError("alarm rule %d of %d: need 1 <= k <= n" % (k, n))
        self.k = k
        self.n = n
        self.threshold = threshold
        self.clear = clear
        self.hist = bytearray(n)  # the last n windows, oldest overwritten first
        self.reset()

    def reset(self):
        h = self.hist
        for i in range(self.n):
            h[i] = 0
        self.pos = 0
        self.above = 0  # windows of the last n above the threshold
        self.over_clear = 0  # ... above the clear threshold
        self.raised = False

    def __repr__(self):
        return "<Alarm %d of %d above %g, clear below %g: %s, %d above>" % (
            self.k, self.n, self.threshold, self.clear, "raised" if self.raised else "clear",
            self.above)

    def step(self, score):
        """Feed one window's score; return True while the alarm is raised."""
        h = self.hist
        p = self.pos
        old = h[p]
        new = (1 if score > self.threshold else 0) | (2 if score > self.clear else 0)
        h[p] = new
        p += 1
        self.pos = 0 if p == self.n else p
        self.above += (new & 1) - (old & 1)
        self.over_clear += (new >> 1) - (old >> 1)
        if not self.raised:
            if self.above >= self.k:
                self.raised = True
        elif self.over_clear == 0:
            self.raised = False
        return self.raised
