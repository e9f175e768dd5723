"""The threshold of on-board learning (phase 2 of vwatch.learning), from what the board keeps
of the held-out scores: their count, the largest ones and the sum of their logs.

    top = Top(64)
    top.add(score)                                  # each held-out window
    p = window_rate(0.01, windows_per_hour, 3, 5)   # per-window rate for the alarm budget
    t, clear, how = threshold(top, p, independent)

The host's rule (vibrawatch.thresholds), simplified where the board lacks scipy; see
threshold(). Costs: 4 x size bytes; add() allocates a boxed float on most ports.
"""

import math
from array import array


_Z95 = 1.6448536  # standard normal 95 % quantile


def chi2_quantile(nu, upper):
    """Wilson-Hilferty approximation of the chi-square quantile (95 % if upper, else 5 %)
    with nu degrees of freedom; within 1 % of the exact value for nu >= 2."""
    h = 2.0 / (9.0 * nu)
    x = 1.0 - h + (_Z95 if upper else -_Z95) * math.sqrt(h)
    return nu * x * x * x


def _comb(n, k):
    r = 1
    for i in range(k):
        r = r * (n - i) // (i + 1)
    return r


def raise_probability(p, k, n):
    """Chance that a window raises a k-of-n alarm (as vibrawatch.thresholds)."""
    return _comb(n - 1, k - 1) * p ** k * (1.0 - p) ** (n - k)


def window_rate(per_hour, windows_per_hour, k, n):
    """Per-window exceedance that gives ``per_hour`` false alarms under the k-of-n rule."""
    target = per_hour / windows_per_hour
    lo = 1e-15
    hi = 0.5
    if raise_probability(hi, k, n) <= target:
        return hi
    for _ in range(60):  # bisection on log p
        mid = math.sqrt(lo * hi)
        if raise_probability(mid, k, n) < target:
            lo = mid
        else:
            hi = mid
    return lo


class Top:
    """The largest scores seen (sorted, largest first), their count, and the sum of logs."""

    def __init__(self, size):
        self.v = array("f", range(size))
        self.kept = 0
        self.m = 0
        self.logs = 0.0

    def add(self, s):
        self.m += 1
        self.logs += math.log(s if s > 1e-30 else 1e-30)
        v = self.v
        k = self.kept
        if k == len(v):
            if s <= v[k - 1]:
                return
            k -= 1
        else:
            self.kept += 1
        while k > 0 and v[k - 1] < s:
            v[k] = v[k - 1]
            k -= 1
        v[k] = s

    def geo_mean(self):
        return math.exp(self.logs / self.m) if self.m else 0.0


MIN_TAIL = 10
TAIL_FRACTION = 0.10


def threshold(top, p, independent):
    """(threshold, clear, method) for a per-window exceedance p from the phase-2 scores.

    The host's rule (vibrawatch.thresholds.TailModel.quantile) with what the board keeps:
    the tail is the top max(10, 10 %) scores, at most as many as ``top`` holds; an order
    statistic certifies p where the counts allow (Poisson upper bound, chi-square quantile by
    Wilson-Hilferty, in place of Clopper-Pearson), else the exponential tail extrapolates with
    a 95 % upper bound on its scale. ``independent``: fraction of windows counted as independent
    (min(1, 2 hop / N): the board does not estimate the scores' autocorrelation)."""
    m = top.m
    v = top.v
    nt = max(MIN_TAIL, int(math.ceil(TAIL_FRACTION * m)))
    nt = min(nt, top.kept - 1, m - 1)
    if nt < 2:
        raise ValueError("too few phase-2 windows (%d) to set a threshold" % m)
    u = v[nt]
    frac = nt / m
    beta = 0.0
    for i in range(nt):
        beta += v[i] - u
    beta = max(beta / nt, 1e-12 * max(1.0, abs(u)))
    m_eff = max(1.0, m * min(1.0, independent))
    k_eff = max(1.0, nt * min(1.0, independent))
    beta_up = beta * 2 * k_eff / chi2_quantile(2 * k_eff, False)

    def tail_at(q):
        return u + beta_up * math.log(frac / q) if q < frac else math.inf

    def upper(count):  # 95 % upper bound on the rate, `count` of m windows above
        c = count * m_eff / m
        return chi2_quantile(2 * (c + 1), True) / (2 * m_eff) if c else -math.log(0.05) / m_eff

    def quantile(q):
        t_data = math.inf
        c = -1
        while c + 1 < nt and upper(c + 1) <= q:
            c += 1
        if c >= 0:
            t_data = v[c]
        t_tail = tail_at(q)
        return (t_data, "data") if t_data <= t_tail else (t_tail, "tail")

    t, how = quantile(p)
    if t == math.inf:  # a budget so loose that no rule applies: the largest score seen
        t, how = v[0], "max"
    c, _ = quantile(min(0.5, 10 * p))
    clear = min(t, max(c if c != math.inf else u, top.geo_mean()))
    return t, clear, how
