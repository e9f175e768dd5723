"""Thresholds that hold out of sample: from distances of windows the model did not see.

With little normal data the distances of the training windows are biased low (the model has
seen them), so a quantile of them flags many new normal windows. Instead:

1. **Blocked cross-validation over time** (:func:`blocked_cv_scores`): every recording is cut
   into ``folds`` blocks in time; the model is refitted without one block of every recording
   (and without the windows that overlap it) and scores that block. Together with the held-out
   tail of each recording this gives one honest, out-of-sample score per normal window.
2. **A tail model** of those scores (:class:`TailModel`): an exponential tail fitted to the top
   10 %, with a one-sided upper confidence bound on its scale, extrapolates to the small
   per-window rates that a false-alarm budget asks for, and says how sure it is. Where the data
   hold enough windows, an order statistic certifies the rate directly instead.
3. **Fallbacks:** Hotelling's T^2 prediction bound for a new observation from a Gaussian fitted
   on n windows in d dimensions (the chi-square quantile is its n -> infinity limit), used when
   there are too few held-out windows; the report says when the data are far from it.
4. **Costs** (:func:`choose_by_cost`): with labelled faulty recordings, the threshold and the
   alarm's k-of-n minimise  cost_miss x P(a fault is not alarmed within 8 windows)
   + cost_false_alarm x false alarms per hour.

False alarms per hour become a per-window rate through the alarm rule under independence of
windows (:func:`raise_probability`). Confidence statements count windows that overlap by at
most half as independent (with a Hann window, spectra of windows overlapping by half correlate
by about 0.17, Welch 1967), and denser windows as ``hop / (window / 2)`` of one.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import VibrawatchError


def _scipy_stats():
    # scipy.stats takes most of a second to import: only once a threshold is computed, so
    # that the CLI's other commands start at once.
    from scipy import stats

    return stats

DEFAULT_FALSE_ALARMS_PER_HOUR = 0.01  # one false alarm in about four days of operation
CONFIDENCE = 0.95
CV_FOLDS = 10
TAIL_FRACTION = 0.10
MIN_TAIL = 10  # exceedances the tail's scale is estimated from, at least
MIN_HELD_OUT = 30  # independent held-out windows below which the Gaussian bound is used
ALARM_RULES = ((1, 1), (2, 2), (2, 3), (3, 5), (4, 6), (5, 8))
FAR_FROM_THEORY = 1.5  # empirical / theoretical quantile ratio beyond which the report warns


class ThresholdError(VibrawatchError):
    pass


def blocked_cv_scores(blocks, fit_estimator, score, gap, folds=CV_FOLDS, with_groups=False):
    """Out-of-sample scores of every window of every recording's training part.

    blocks: per recording, its training feature rows (windows, d) in time order.
    fit_estimator(rows): a scikit-learn covariance estimator fitted on rows (with_groups:
    fit_estimator(rows, groups), groups giving each row's index in ``blocks``);
    score(est, rows) -> distances.
    gap: windows either side of a held-out block left out of training (they overlap it).
    Returns one array of scores per recording, in time order, or None when a fold would leave
    no more windows than features.
    """
    out = [np.empty(len(b)) for b in blocks]
    cuts = [np.linspace(0, len(b), folds + 1).astype(int) for b in blocks]
    for j in range(folds):
        train, groups = [], []
        for i, (b, c) in enumerate(zip(blocks, cuts)):
            keep = np.ones(len(b), bool)
            keep[max(0, c[j] - gap) : c[j + 1] + gap] = False
            train.append(b[keep])
            groups.append(np.full(int(keep.sum()), i))
        train = np.concatenate(train)
        if len(train) <= blocks[0].shape[1] + 1:
            return None  # too few windows to refit without a block: the caller says so
        est = (fit_estimator(train, np.concatenate(groups)) if with_groups
               else fit_estimator(train))
        for b, c, o in zip(blocks, cuts, out):
            if c[j + 1] > c[j]:
                o[c[j] : c[j + 1]] = score(est, b[c[j] : c[j + 1]])
    return out


def recording_blocks_cv_scores(recordings, fit_estimator, score, folds=CV_FOLDS,
                               with_groups=False):
    """Out-of-sample scores of short recordings (snapshots) in time order: they are cut into
    ``folds`` blocks of consecutive whole recordings (one recording a block when fewer); the
    model is refitted without one block and scores it. No gap: windows never span two
    recordings. Returns one array per recording, or None as :func:`blocked_cv_scores`
    (``with_groups`` as there)."""
    folds = min(folds, len(recordings))
    if folds < 2:
        return None
    sizes = np.array([len(r) for r in recordings])
    rows = np.concatenate(recordings)
    starts = np.r_[0, np.cumsum(sizes)]
    cuts = starts[np.linspace(0, len(recordings), folds + 1).astype(int)]
    groups = np.repeat(np.arange(len(recordings)), sizes)
    out = np.empty(len(rows))
    for j in range(folds):
        keep = np.ones(len(rows), bool)
        keep[cuts[j] : cuts[j + 1]] = False
        if keep.sum() <= rows.shape[1] + 1:
            return None
        if cuts[j + 1] > cuts[j]:
            est = (fit_estimator(rows[keep], groups[keep]) if with_groups
                   else fit_estimator(rows[keep]))
            out[cuts[j] : cuts[j + 1]] = score(est, rows[cuts[j] : cuts[j + 1]])
    return [out[a:b] for a, b in zip(starts[:-1], starts[1:])]


def independent_fraction(sequences, max_lag=200):
    """1 / the integrated autocorrelation time of the log scores, pooled over recordings.

    Slow processes (speed and load wander, warm-up) make neighbouring windows alike, so n
    windows carry fewer than n independent looks at the false-alarm rate. The sum of the
    autocorrelations runs until they first drop below 0.05 (or stop decreasing)."""
    seqs = [np.log(np.maximum(np.asarray(s, np.float64), 1e-300)) for s in sequences
            if len(s) > 8]
    if not seqs:
        return 1.0
    centred = [s - s.mean() for s in seqs]
    var = sum(float(c @ c) for c in centred) / sum(len(c) for c in centred)
    if var <= 0:
        return 1.0
    tau, prev = 1.0, 1.0
    for lag in range(1, max_lag):
        pairs = [(c[:-lag], c[lag:]) for c in centred if len(c) > lag + 4]
        if not pairs:
            break
        rho = sum(float(a @ b) for a, b in pairs) / (var * sum(len(a) for a, _ in pairs))
        if rho < 0.05 or rho > prev:
            break
        tau += 2 * rho
        prev = rho
    return 1.0 / tau


def raise_probability(p, k, n):
    """Chance that a window raises a k-of-n alarm (it is above, and exactly k-1 of the n-1
    before it), for independent windows each above with probability p."""
    return math.comb(n - 1, k - 1) * p**k * (1.0 - p) ** (n - k)


def window_rate_for(false_alarms_per_hour, windows_per_hour, k, n):
    """Per-window exceedance p that gives the false-alarm rate under the k-of-n rule."""
    target = false_alarms_per_hour / windows_per_hour
    lo, hi = 1e-15, 0.5
    if raise_probability(hi, k, n) <= target:
        return hi
    for _ in range(200):  # bisection on log p; raise_probability rises with p below 0.5
        mid = math.sqrt(lo * hi)
        if raise_probability(mid, k, n) < target:
            lo = mid
        else:
            hi = mid
    return lo


def clopper_pearson_upper(count, trials, confidence=CONFIDENCE):
    """One-sided upper confidence bound on a rate seen ``count`` times in ``trials``."""
    if trials <= 0:
        return 1.0
    if count >= trials:
        return 1.0
    return float(_scipy_stats().beta.ppf(confidence, count + 1, trials - count))


def hotelling_bound(n, d, p):
    """Score a new Gaussian observation exceeds with probability p (mean and covariance
    estimated from n windows in d dimensions): d(n+1)(n-1) / (n(n-d)) F(1-p; d, n-d)."""
    if n <= d:
        return math.inf
    return d * (n + 1) * (n - 1) / (n * (n - d)) * float(_scipy_stats().f.isf(p, d, n - d))


def chi2_bound(d, p):
    return float(_scipy_stats().chi2.isf(p, d))


class TailModel:
    """Empirical distribution of out-of-sample normal scores with an exponential upper tail.

    ``independent``: the fraction of windows counted as independent for confidence bounds
    (hop / window for overlapping windows).
    """

    def __init__(self, scores, independent=1.0, confidence=CONFIDENCE):
        s = np.sort(np.asarray(scores, np.float64))
        if s.size < MIN_TAIL + 2:
            raise ThresholdError("only %d held-out normal windows: too few to calibrate a "
                                 "threshold" % s.size)
        self.scores = s
        self.m = s.size
        self.m_eff = max(1.0, self.m * min(1.0, independent))
        self.confidence = confidence
        n_tail = max(MIN_TAIL, int(math.ceil(TAIL_FRACTION * self.m)))
        n_tail = min(n_tail, self.m - 1)
        self.u = float(s[self.m - n_tail - 1])
        self.frac = n_tail / self.m
        excess = s[self.m - n_tail :] - self.u
        self.beta = max(float(excess.mean()), 1e-12 * max(1.0, abs(self.u)))
        k_eff = max(1.0, n_tail * min(1.0, independent))
        self.beta_upper = self.beta * 2 * k_eff / float(
            _scipy_stats().chi2.ppf(1 - confidence, 2 * k_eff))

    def _cp(self, count):
        scale = self.m_eff / self.m
        return clopper_pearson_upper(count * scale, self.m_eff, self.confidence)

    def exceedance(self, t, upper=False):
        """Estimated chance that a normal window scores above t; upper: a 95 % bound, the
        smaller of the data's (Clopper-Pearson on the count above t) and the tail's."""
        count = self.m - int(np.searchsorted(self.scores, t, side="right"))
        if t <= self.u:
            return self._cp(count) if upper else count / self.m
        tail = self.frac * math.exp(-(t - self.u) / (self.beta_upper if upper else self.beta))
        return min(tail, self._cp(count)) if upper else tail

    def quantile(self, p):
        """(threshold, how): the smallest threshold whose exceedance is at most p at the stated
        confidence: an order statistic the data certify ('data'), or the tail's extrapolation
        ('tail'), whichever is lower."""
        t_tail = (self.u + self.beta_upper * math.log(self.frac / p) if p < self.frac
                  else math.inf)
        t_data = math.inf
        if self._cp(0) <= p:  # the largest count above the threshold the data still certify
            lo, hi = 0, self.m - 1
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self._cp(mid) <= p:
                    lo = mid
                else:
                    hi = mid - 1
            t_data = float(self.scores[self.m - lo - 1])
        if t_data <= t_tail:
            return t_data, "data"
        return t_tail, "tail"


@dataclass
class Calibration:
    """A chosen threshold and alarm rule, and what is known about its false-alarm rate."""

    threshold: float
    clear_threshold: float
    alarm_k: int
    alarm_n: int
    method: str  # 'data', 'tail', 'hotelling', 'chi2', 'cost'
    windows_per_hour: float
    target_per_hour: float
    p_window: float  # per-window rate asked for
    p_expected: float  # estimated per-window exceedance at the threshold
    p_upper: float  # its upper confidence bound
    n_held_out: int
    n_independent: float
    hotelling: float
    chi2: float
    notes: list = field(default_factory=list)
    cost: dict = field(default_factory=dict)

    @property
    def alarms_per_hour(self):
        return self.windows_per_hour * raise_probability(self.p_expected, self.alarm_k,
                                                         self.alarm_n)

    @property
    def alarms_per_hour_upper(self):
        return self.windows_per_hour * raise_probability(self.p_upper, self.alarm_k,
                                                         self.alarm_n)

    def lines(self):
        how = {"data": "certified by the held-out scores", "tail": "extrapolated by the "
               "exponential tail of the held-out scores", "hotelling": "Hotelling's T^2 "
               "prediction bound (Gaussian features assumed)", "chi2": "the chi-square "
               "quantile (Gaussian features, exact mean and covariance assumed)",
               "cost": "the lowest expected cost"}[self.method]
        out = [
            "threshold %.4g (clears below %.4g), alarm %d of %d windows: %s"
            % (self.threshold, self.clear_threshold, self.alarm_k, self.alarm_n, how),
            "calibrated on %d out-of-sample normal windows (blocked cross-validation over time "
            "and the held-out tail; about %.0f independent)" % (self.n_held_out,
                                                                 self.n_independent),
            "expected false alarms: %.2g per hour (%.0f%% confidence: at most %.2g per hour), "
            "windows above the threshold: %.2g%% (at most %.2g%%); target %.2g per hour"
            % (self.alarms_per_hour, 100 * CONFIDENCE, self.alarms_per_hour_upper,
               100 * self.p_expected, 100 * self.p_upper, self.target_per_hour),
            "for comparison, Gaussian theory at the same window rate: Hotelling %.4g, "
            "chi-square %.4g" % (self.hotelling, self.chi2),
        ]
        if self.cost:
            out.append("cost: %.4g (miss chance %.2g x %g + false alarms %.2g/h x %g)" % (
                self.cost["total"], self.cost["p_miss"], self.cost["cost_miss"],
                self.cost["fa_per_hour"], self.cost["cost_false_alarm"]))
        out.extend("note: " + n for n in self.notes)
        return out


def calibrate(held_scores, n_train, d, windows_per_hour, independent, k, n,
              false_alarms_per_hour=None, method="auto"):
    """Threshold for a false-alarm budget from out-of-sample normal scores.

    held_scores: out-of-sample scores of normal windows (all recordings together).
    method: 'auto' (the data, or Hotelling's bound when they are too few), 'data', 'hotelling'
    or 'chi2'.
    """
    if false_alarms_per_hour is None:
        false_alarms_per_hour = DEFAULT_FALSE_ALARMS_PER_HOUR
    if not false_alarms_per_hour > 0:
        raise ThresholdError("--false-alarms-per-hour must be above 0, e.g. 0.01")
    if method not in ("auto", "data", "hotelling", "chi2"):
        raise ThresholdError("threshold method %r is unknown: use auto, data, hotelling or "
                             "chi2" % method)
    held_scores = np.asarray(held_scores, np.float64)
    p = window_rate_for(false_alarms_per_hour, windows_per_hour, k, n)
    hot, chi = hotelling_bound(n_train, d, p), chi2_bound(d, p)
    notes = []
    m_eff = len(held_scores) * min(1.0, independent)
    tail = None
    if len(held_scores) >= MIN_TAIL + 2:
        tail = TailModel(held_scores, independent)
    if method == "auto":
        method = "data" if (tail is not None and m_eff >= MIN_HELD_OUT) else "hotelling"
        if method == "hotelling":
            notes.append("only %.0f independent held-out windows (fewer than %d): the threshold "
                         "is Hotelling's Gaussian bound, not measured; record more normal data"
                         % (m_eff, MIN_HELD_OUT))
    if method == "data":
        if tail is None:
            raise ThresholdError("%d held-out normal windows are too few to set the threshold "
                                 "from data: give more normal data or use --threshold-method "
                                 "hotelling" % len(held_scores))
        threshold, method = tail.quantile(p)
    elif method == "hotelling":
        threshold = hot
        if not math.isfinite(threshold):
            raise ThresholdError("%d training windows for %d features: Hotelling's bound needs "
                                 "more windows than features" % (n_train, d))
    else:
        threshold = chi
    if tail is not None:
        p_exp, p_up = tail.exceedance(threshold), tail.exceedance(threshold, upper=True)
        clear = _clear_threshold(tail, p, threshold)
        check = 1.0 - max(TAIL_FRACTION, MIN_TAIL / len(held_scores))
        emp, theory = float(np.quantile(held_scores, check)), hotelling_bound(n_train, d,
                                                                              1.0 - check)
        ratio = emp / theory if theory > 0 else math.inf
        if not 1 / FAR_FROM_THEORY <= ratio <= FAR_FROM_THEORY:
            notes.append("held-out scores are far from Gaussian theory (their %.0f%% quantile "
                         "%.3g is %.2gx Hotelling's %.3g): %s" % (
                             100 * check, emp, ratio, theory,
                             "trust the data-based threshold, not the formula"
                             if method in ("data", "tail") else
                             "this Gaussian threshold is unreliable; use --threshold-method "
                             "data"))
    else:
        p_exp = p_up = p
        clear = threshold
    return Calibration(
        threshold=float(threshold), clear_threshold=float(min(clear, threshold)), alarm_k=k,
        alarm_n=n, method=method, windows_per_hour=windows_per_hour,
        target_per_hour=false_alarms_per_hour, p_window=p, p_expected=p_exp, p_upper=p_up,
        n_held_out=len(held_scores), n_independent=m_eff, hotelling=hot, chi2=chi, notes=notes)


def _clear_threshold(tail, p, threshold):
    """Hysteresis: the alarm clears once no window of the last n is above the score that ten
    times as many normal windows exceed (but never below the held-out median)."""
    clear, _ = tail.quantile(min(0.5, 10 * p))
    return min(threshold, max(clear, float(np.median(tail.scores))))


def fault_exceedance(fault_scores, t):
    """Chance that a window of a fault scores above t, from a log-normal fitted to the windows
    of every labelled faulty recording together: a fault of unknown severity, somewhere among
    and around the labelled ones (one recording's spread alone would make any threshold below
    it look certain to catch every fault)."""
    logs = np.log(np.maximum(np.concatenate([np.asarray(f, np.float64) for f in fault_scores]),
                             1e-300))
    sd = max(float(logs.std()), 1e-3)
    return float(_scipy_stats().norm.sf((math.log(max(t, 1e-300)) - logs.mean()) / sd))


def choose_by_cost(held_scores, fault_scores, windows_per_hour, independent, cost_miss,
                   cost_false_alarm, n_train, d, rules=ALARM_RULES):
    """Threshold and k-of-n that minimise the expected cost (see the module docstring).

    fault_scores: one array per labelled faulty recording (scored by the final model).
    """
    if not fault_scores:
        raise ThresholdError("costs need labelled faulty recordings: pass them with --anomalous")
    if not (cost_miss > 0 and cost_false_alarm > 0):
        raise ThresholdError("--cost-miss and --cost-false-alarm must both be above 0")
    tail = TailModel(held_scores, independent)
    everything = np.concatenate([np.asarray(held_scores)] + [np.asarray(f) for f in fault_scores])
    lo = max(float(np.median(held_scores)), 1e-9)
    hi = max(float(everything.max()), tail.quantile(1e-12)[0]) * 1.5
    grid = np.geomspace(lo, hi, 400)
    respond = max(n for _, n in rules)  # every rule gets the same time to respond
    best = None
    for t in grid:
        p_fa = tail.exceedance(t, upper=True)
        q = fault_exceedance(fault_scores, t)
        for k, n in rules:
            fa = windows_per_hour * raise_probability(p_fa, k, n)
            # a fault missed: fewer than k windows above in the first `respond` windows
            p_miss = float(_scipy_stats().binom.cdf(k - 1, respond, q))
            total = cost_miss * p_miss + cost_false_alarm * fa
            key = (total, -t, n)  # ties: the higher threshold, then the shorter rule
            if best is None or key < best[0]:
                best = (key, t, k, n, p_miss, fa)
    (total, _, _), t, k, n, p_miss, fa = best
    p = tail.exceedance(t)
    clear = _clear_threshold(tail, tail.exceedance(t, upper=True), t)
    cal = Calibration(
        threshold=float(t), clear_threshold=float(clear),
        alarm_k=k, alarm_n=n, method="cost", windows_per_hour=windows_per_hour,
        target_per_hour=fa, p_window=p, p_expected=p, p_upper=tail.exceedance(t, upper=True),
        n_held_out=tail.m, n_independent=tail.m_eff, hotelling=hotelling_bound(n_train, d, p),
        chi2=chi2_bound(d, p),
        cost={"total": total, "p_miss": p_miss, "fa_per_hour": fa, "cost_miss": cost_miss,
              "cost_false_alarm": cost_false_alarm})
    return cal
