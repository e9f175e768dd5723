"""Learn normal operation on the board itself, then run the detector on what was learned.

    import vwatch
    vwatch.learn(600)                                   # 10 min of normal running -> /model.vwm
    vwatch.learn(600, template="/template.vwm")         # settings from a template
    vwatch.learn(60, sensor=Replay("/rec.wav", speed=0), start=False)

The feature settings (window, hop, bands, statistics, alarm rule) come from a template: a
model file (the current /model.vwm by default, or one `vibrawatch template` wrote). In a
template (0 training windows) the threshold field holds the false-alarm budget per hour.
Phases, each a number of windows worked out from ``seconds``:
0. epsilon: 16 windows give the median total band power; epsilon is 1e-6 of it (the rule of
   docs/features.md, on the first windows instead of a sample of all of them);
1. 75 % of the rest: mean and co-moments, accumulated in the model's own arrays
   (vwatch.moments), then Oracle Approximating Shrinkage and the precision's Cholesky factor
   (vwatch.covfit);
2. after skipping the windows that overlap phase 1, the rest is scored with that model: the
   count, the largest 64 scores and the mean log score set the threshold out of sample
   (vwatch.threshold) and check that phase 2 fits the model (a fault or a change of
   operation while learning: refused, nothing written).
The model is written to ``model + '.tmp'``, checked, and renamed over ``model``
(vwatch.modelwrite): an interrupted run (Ctrl-C, reset, power cut) leaves the previous model in place.
Lines go through ``out``: docs/protocol.md, "Learning".
Costs: what the detector needs (the model's arrays are the accumulators), 12d bytes, this
module's code (about 10 KB on the 64-bit unix port) and one phase's module at a time (moments,
covfit, threshold, modelwrite: 1.5 to 3.4 KB each), and during phase 1 2d(d+1) bytes that
compensate the co-moments' rounding, allocated before the detector's buffers and given back
if those then do not fit (d = 96: 18.6 KB; without them the shift alone keeps the covariance
within about 1e-5 of float64 over 20 000 windows: tests/test_learn.py).
"""

import gc
import math
import sys
import time
from array import array

from micropython import const

from . import _unload, check_source

_EPS_WINDOWS = const(16)
_TOP = const(64)
_TRAIN_SHARE = 0.75  # as fit's default --holdout 0.25
_EPS0 = 1e-30  # epsilon while measuring the band power (float32 keeps it)
_PLAUSIBLE = 4.0  # phase 2's geometric mean score may be this many times the in-sample mean
_OAS = const(3)  # the estimator byte (docs/model-format.md)
_REPORT_MS = const(5000)
DEFAULT_FALSE_ALARMS_PER_HOUR = 0.01  # as vibrawatch.thresholds


class _Stop(Exception):
    pass


def _split(total, gap):
    rest = total - _EPS_WINDOWS
    n1 = int(rest * _TRAIN_SHARE)
    return n1, rest - n1 - gap


def plan(seconds, m):
    """(n0, n1, gap, n2): windows for epsilon, the fit, skipped, the threshold."""
    total = int((seconds * m.rate - m.window) // m.hop) + 1
    gap = -(-m.window // m.hop) - 1
    n1, n2 = _split(total, gap)
    if n1 <= m.d or n2 < 30:
        need = max(total, 1)
        while True:
            a, b = _split(need, gap)
            if a > m.d and b >= 30:
                break
            need += 1
        raise ValueError(
            "%g s give %d windows: learning %d features needs more windows than features to "
            "fit and 30 more to set the threshold; learn for at least %d s"
            % (seconds, max(total, 0), m.d,
               math.ceil(((need - 1) * m.hop + m.window) / m.rate)))
    return _EPS_WINDOWS, n1, gap, n2


class _Windows:
    """The current window of a ring fed by a sensor, one after the other."""

    def __init__(self, ring, sensor, fe):
        self.ring = ring
        self.sensor = sensor
        self.fe = fe
        self.realtime = getattr(sensor, "realtime", True)
        self.skipped = 0  # windows with invalid samples, left out
        self.dropped = 0  # frames lost since start (ring and sensor)
        self.seen = sensor.dropped

    def next(self, compute=True):
        ring = self.ring
        sensor = self.sensor
        while True:
            got = ring.fill(sensor)
            if ring.dropped or sensor.dropped != self.seen:
                # Slower than the sensor: a window would straddle the gap, so start afresh on
                # frames after it (learning then takes longer than ``seconds``).
                self.dropped += ring.dropped + sensor.dropped - self.seen
                self.seen = sensor.dropped
                ring.reset()
                ring.invalid = getattr(sensor, "invalid", 0)
                continue
            if ring.ready():
                if ring.tainted():
                    self.skipped += 1
                    ring.advance()
                    continue
                if compute:
                    self.fe.compute(ring, 0)
                ring.advance()
                return self.fe.f
            if getattr(sensor, "ended", False):
                raise _Stop()
            if self.realtime and not got:
                time.sleep_ms(1)


def _set_eps(fe, m, eps):
    m.eps = eps
    pr = getattr(fe, "pr", None)
    if pr is not None:  # the q15 backend keeps ln(eps) in Q16 (+ offset)
        from .q15_score import LE

        pr[LE] = int(math.floor(math.log(eps) * 65536 + 0.5)) + 0x2000000


def _epsilon(win, fe, m, count):
    # docs/features.md, "Epsilon": 1e-6 x median over windows of the channel-mean band power
    _set_eps(fe, m, _EPS0)
    totals = array("f", range(count))
    per = len(fe.f) // m.channels
    for i in range(count):
        f = win.next()
        t = 0.0
        for c in range(m.channels):
            for b in range(m.bands):
                t += math.exp(f[c * per + b])
        totals[i] = t / m.channels
    s = sorted(totals)
    med = s[count // 2] if count % 2 else 0.5 * (s[count // 2 - 1] + s[count // 2])
    eps = array("f", [1e-6 * med])[0]  # as stored: float32
    if not eps > 0:
        raise ValueError("the sensor is silent (no band power in %d windows): check its "
                         "wiring and that the machine runs" % count)
    _set_eps(fe, m, eps)
    return eps


class _Progress:
    def __init__(self, out, phase, total):
        self.out = out
        self.phase = phase
        self.total = total
        self.t = time.ticks_ms()

    def step(self, done, win):
        if done == self.total or time.ticks_diff(time.ticks_ms(), self.t) >= _REPORT_MS:
            self.t = time.ticks_ms()
            self.out("vw1 learn phase=%d done=%d of=%d skipped=%d dropped=%d"
                     % (self.phase, done, self.total, win.skipped, win.dropped))


def _unix_time():
    # 0 (unknown) on a port without a clock (no time.time(): the qemu boards)
    if not hasattr(time, "time"):
        return 0
    t = time.time()
    # Most ports count from 2000: a count that small is one (a 1970 count passed it in 2000).
    return int(t + (946684800 if t < 946684800 else 0))


def learn(seconds, model="/model.vwm", sensor=None, backend=None, out=print, template=None,
          speed=1.0, start=True, false_alarms_per_hour=None, compensate=True):
    """Learn ``seconds`` of normal operation; write ``model``; then run the detector on it
    (start=False: return instead). Returns the learned model, or None when learning was
    refused or interrupted (``model`` is then unchanged). model=None: learn, write nothing
    and return the model (its arrays in RAM), for boards without a writable filesystem.
    vwatch.learn runs the detector itself, after dropping this module's code."""
    m, sensor, own = learn_only(seconds, model, sensor, backend, out, template, speed,
                                false_alarms_per_hour, compensate)
    try:
        if m is not None and start:
            from . import runtime

            runtime.run(m, sensor, backend, speed, None, out)
    finally:
        if own:
            sensor.close()
    return m


def learn_only(seconds, model, sensor, backend, out, template, speed, false_alarms_per_hour,
               compensate):
    """learn() without the detector: (model or None, the sensor, whether it was made here and
    is the caller's to close)."""
    from . import backend_class
    from . import start as st
    from .ring import Ring

    gc.collect()
    if template is None and model is None:
        raise ValueError("model=None learns without saving: give the settings as template=")
    m = st.load(template or model)
    if not isinstance(template or model, str):  # the caller's model stays as it was
        from . import Model

        m, given = Model(), m
        for k in given.__dict__:
            setattr(m, k, getattr(given, k))
    if m.p or m.k != 1 or m.zoom_r:
        raise ValueError("template %s has %s: on-board learning writes one component in the "
                         "full form without a zoom block; use a template written by "
                         "`vibrawatch template`" % (template or model, "a PCA reduction"
                                                    if m.p else "%d components" % m.k
                                                    if m.k != 1 else "a zoom block"))
    budget = false_alarms_per_hour
    if budget is None:
        budget = m.threshold if m.n_train == 0 else DEFAULT_FALSE_ALARMS_PER_HOUR
    n0, n1, gap, n2 = plan(seconds, m)
    own = sensor is None
    if own:
        from .runtime import default_sensor

        sensor = default_sensor(speed)
    try:
        check_source(sensor, m)
        _unload("wav")  # a replay keeps only its file
        cls = backend_class(backend)
        gc.collect()
        # The co-moments' compensation first, while the heap is in one piece; given back if
        # then the detector's own buffers do not fit.
        if compensate:
            try:
                compensate = array("f", range(len(m.lp)))
            except MemoryError:
                compensate = False
        try:
            ring = Ring(m.channels, m.window, m.hop, sensor.scale)
            fe = cls(m)
        except MemoryError:
            if not compensate:
                raise
            compensate = ring = fe = None
            gc.collect()
            ring = Ring(m.channels, m.window, m.hop, sensor.scale)
            fe = cls(m)
        _unload("start")
        st = None
        win = _Windows(ring, sensor, fe)
    except BaseException:
        if own:
            sensor.close()
        raise
    head = ("vw1 learn start backend=%s template=%s seconds=%g rate=%g ch=%d win=%d hop=%d "
            "feat=%d windows=%d+%d+%d+%d fa_per_hour=%g" % (
                fe.name, template or model, seconds, sensor.rate, m.channels, m.window, m.hop,
                m.d, n0, n1, gap, n2, budget))
    stopped = "vw1 learn interrupted: %s is unchanged" % model  # formatted before it is needed
    try:
        learned = _phases(m, win, fe, compensate, (n0, n1, gap, n2), budget, model, out, head)
    except _Stop:
        out("vw1 learn refused: the sensor ended before the %d windows of %g s (a shorter "
            "recording?); %s is unchanged" % (n0 + n1 + gap + n2, seconds, model))
        learned = None
    except KeyboardInterrupt:
        out(stopped)
        learned = None
    except Exception as e:
        out("vw1 learn error %s: %s; %s is unchanged" % (type(e).__name__, e, model))
        if own:
            sensor.close()
        raise
    return learned, sensor, own


def _phases(m, win, fe, compensate, counts, budget, path, out, head):
    # Each phase's code is loaded when it starts and dropped when it ends.
    n0, n1, gap, n2 = counts
    d = m.d
    gc.collect()
    from .moments import Moments

    # After what the detector needs: the co-moments' compensation only if it still fits.
    acc = Moments(m.mu, m.lp, d, compensate or False)
    compensate = Moments = None
    gc.collect()
    out("%s compensated=%d heap_free=%d heap_used=%d"
        % (head, acc.compensated, gc.mem_free(), gc.mem_alloc()))
    eps = _epsilon(win, fe, m, n0)
    out("vw1 learn eps=%.7g windows=%d" % (eps, n0))
    pr = _Progress(out, 1, n1)
    for i in range(n1):
        acc.add(win.next())
        pr.step(i + 1, win)
    acc.finish()  # frees the compensation arrays
    acc = None
    _unload("moments")
    gc.collect()
    from . import covfit

    shrink, scale = covfit.oas(m.lp, d, n1)
    covfit.precision_factor(m.lp, d)
    # mean in-sample score: trace(P S) with S = (Sigma - a m I) / (1 - a)
    tp = covfit.trace_sq(m.lp)
    covfit = None
    _unload("covfit")
    inside = d if shrink >= 1.0 else (d - shrink * scale * tp) / (1.0 - shrink)
    out("vw1 learn fit windows=%d shrinkage=%.4g in_sample=%.4g" % (n1, shrink, inside))
    for _ in range(gap):
        win.next(False)
    gc.collect()
    from . import threshold as th

    top = th.Top(_TOP)
    pr = _Progress(out, 2, n2)
    for i in range(n2):
        win.next()
        s = fe.score()
        if s != s or s * 0.0 != 0.0:
            raise ValueError("phase-2 window %d scored %r: the learned model is unusable" % (i, s))
        top.add(s)
        pr.step(i + 1, win)
    p = th.window_rate(budget, 3600.0 * m.rate / m.hop, m.alarm_k, m.alarm_n)
    thr, clear, how = th.threshold(top, p, 2.0 * m.hop / m.window)
    geo = top.geo_mean()
    top = th = None
    _unload("threshold")
    ratio = geo / inside if inside > 0 else math.inf
    out("vw1 learn threshold=%.7g clear=%.7g method=%s p=%.3g held=%d geo_mean=%.4g ratio=%.3g"
        % (thr, clear, how, p, n2, geo, ratio))
    if not ratio <= _PLAUSIBLE:
        out("vw1 learn refused: the held-out windows score %.3g times the learned spread "
            "(geometric mean %.4g, in-sample mean %.4g; at most %g is plausible): the "
            "vibration changed while learning (a fault, another speed or load); fix the "
            "machine or learn again in steady normal operation; %s is unchanged"
            % (ratio, geo, inside, _PLAUSIBLE, path))
        return None
    t32 = array("f", [thr])
    if t32[0] < thr:  # stored as float32, never below the computed value
        t32[0] = thr * (1 + 2.4e-7)
    m.threshold = t32[0]
    m.clear = min(m.threshold, clear)
    m.n_train = n1
    m.estimator = _OAS
    m.created = _unix_time()
    if path is None:  # learned, kept in RAM only (a board without a writable filesystem)
        m.model_id = "unsaved"
        out("vw1 learn done model=unsaved (model=None: nothing written)")
        return m
    gc.collect()
    from .modelwrite import write

    crc = write(m, path)
    write = None
    _unload("modelwrite")
    m.crc = crc
    m.model_id = "%08x" % crc
    out("vw1 learn saved model=%s path=%s bytes=%d" % (m.model_id, path, m.size))
    return m
