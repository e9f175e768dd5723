"""The numbers of on-board learning (vwatch.learn): moments, OAS, the precision's factor, the
threshold. Works in place on the model's own arrays; float32 storage, either float width of
arithmetic (the unix port computes in float64, boards in float32).

    acc = Moments(mu, lp, d)    # mu: d floats (the shift), lp: packed d(d+1)/2 (co-moments)
    acc.add(f)                  # one window's features: shifted, compensated sums
    acc.finish()                # mu = mean, lp = covariance (1/n, as sklearn's)
    a = oas(lp, d, n)           # shrink lp in place (sklearn.covariance.OAS); returns the shrinkage
    precision_factor(lp, d)     # lp: packed L with L L^T = inverse(covariance)

Packed layout (docs/model-format.md): column j of the lower triangle, rows j .. d-1, one
contiguous run after the other: entry (i, j), i >= j, at col(j) + i - j.
Costs: Moments keeps 12d bytes and, where the heap has room, a compensation array of
2d(d+1) bytes (freed by finish()); add() is d(d+1)/2 (compensated) multiply-adds; oas() 2 passes over lp; the factor
d^3/3 multiply-adds in place (d = 96: about 300 000).
"""

import math
from array import array

import micropython


def col(j, d):
    """Position of entry (j, j) in the packed column-major lower triangle."""
    return j * d - (j * (j - 1) >> 1)


@micropython.native
def _add(f, k, y, s1, c1, s2, c2, d):
    # y = f - k; s1 += y; s2 += y y^T, each sum Kahan-compensated. The rounding is read back
    # from the float32 store, so compensation works whatever width the arithmetic has.
    for i in range(d):
        v = f[i] - k[i]
        y[i] = v
        t = v - c1[i]
        old = s1[i]
        s1[i] = old + t
        c1[i] = (s1[i] - old) - t
    p = 0
    for j in range(d):
        yj = y[j]
        for i in range(j, d):
            t = y[i] * yj - c2[p]
            old = s2[p]
            s2[p] = old + t
            c2[p] = (s2[p] - old) - t
            p += 1


@micropython.native
def _add_shifted(f, k, y, s1, c1, s2, d):
    # as _add, with the mean's sums compensated but the co-moments' not (no room for c2)
    for i in range(d):
        v = f[i] - k[i]
        y[i] = v
        t = v - c1[i]
        old = s1[i]
        s1[i] = old + t
        c1[i] = (s1[i] - old) - t
    p = 0
    for j in range(d):
        yj = y[j]
        for i in range(j, d):
            s2[p] += y[i] * yj
            p += 1


@micropython.native
def _finish(k, s1, s2, d, n):
    # mean = k + s1/n; cov = s2/n - (s1/n)(s1/n)^T, written over s2; k becomes the mean.
    inv = 1.0 / n
    p = 0
    for j in range(d):
        mj = s1[j] * inv
        for i in range(j, d):
            s2[p] = s2[p] * inv - (s1[i] * inv) * mj
            p += 1
    for i in range(d):
        k[i] = k[i] + s1[i] * inv


class Moments:
    """Mean and co-moments of feature vectors, accumulated in the arrays the model keeps.

    The first window is the shift: sums are of f - f_0, so the covariance is not the small
    difference of two large numbers; every sum carries its Kahan compensation, the
    co-moments' only when ``compensate`` and the heap has room for it (self.compensated)."""

    def __init__(self, mu, lp, d, compensate=True):
        self.mu = mu  # the shift, then the mean
        self.lp = lp  # the co-moments, then the covariance
        self.d = d
        self.n = 0
        self.s1 = array("f", range(d))
        self.c1 = array("f", range(d))
        self.y = array("f", range(d))
        self.c2 = None
        if compensate:
            try:
                self.c2 = array("f", range(len(lp)))
            except MemoryError:  # the shift alone: error ~ sqrt(n) float32 roundings
                pass
        self.compensated = self.c2 is not None
        for a in (self.s1, self.c1, lp, self.c2 or ()):
            for i in range(len(a)):
                a[i] = 0.0

    def add(self, f):
        if self.n == 0:
            for i in range(self.d):
                self.mu[i] = f[i]
        if self.c2 is None:
            _add_shifted(f, self.mu, self.y, self.s1, self.c1, self.lp, self.d)
        else:
            _add(f, self.mu, self.y, self.s1, self.c1, self.lp, self.c2, self.d)
        self.n += 1

    def drop(self):
        """Free the compensation arrays (after finish)."""
        self.c1 = self.c2 = self.y = None

    def finish(self):
        _finish(self.mu, self.s1, self.lp, self.d, self.n)
        self.drop()


@micropython.native
def _sums(lp, d):
    # trace and squared Frobenius norm of the symmetric matrix in lp, compensated
    tr = 0.0
    ct = 0.0
    fr = 0.0
    cf = 0.0
    p = 0
    for j in range(d):
        for i in range(j, d):
            x = lp[p]
            if i == j:
                t = x - ct
                u = tr + t
                ct = (u - tr) - t
                tr = u
                q = x * x
            else:
                q = 2.0 * x * x
            t = q - cf
            u = fr + t
            cf = (u - fr) - t
            fr = u
            p += 1
    return tr, fr


def oas(lp, d, n):
    """Oracle Approximating Shrinkage (Chen, Wiesel, Eldar & Hero 2010, eq. 23, in the form
    scikit-learn's OAS uses) of the covariance in lp, in place; returns the shrinkage a.

    With m = trace(S)/d and q = mean of the squared entries of S:
    a = min(1, (q + m^2) / ((n + 1)(q - m^2/d))), S <- (1 - a) S + a m I."""
    tr, fr = _sums(lp, d)
    m = tr / d
    q = fr / (d * d)
    den = (n + 1) * (q - m * m / d)
    a = 1.0 if den == 0 else min((q + m * m) / den, 1.0)
    if d == 1:
        a = 0.0
    b = 1.0 - a
    p = 0
    for j in range(d):
        for i in range(j, d):
            lp[p] = b * lp[p] + (a * m if i == j else 0.0)
            p += 1
    return a, m


class NotPositive(ValueError):
    pass


@micropython.native
def _reverse_cholesky(lp, d):
    # S = W^T W with W lower, in place, from the last column to the first: column j of W
    # needs only the columns after it, already final, and the entries of S at row j.
    for j in range(d - 1, -1, -1):
        cj = j * d - ((j * (j - 1)) >> 1)
        s = lp[cj]
        for k in range(1, d - j):
            w = lp[cj + k]
            s -= w * w
        if not s > 0.0:
            return j
        wjj = math.sqrt(s)
        lp[cj] = wjj
        for a in range(j):
            ca = a * d - ((a * (a - 1)) >> 1)
            # W[k][j] at cj + k - j, W[k][a] at ca + k - a, for k > j
            s = lp[ca + j - a]
            oj = cj - j
            oa = ca - a
            for k in range(j + 1, d):
                s -= lp[oj + k] * lp[oa + k]
            lp[ca + j - a] = s / wjj
    return -1


@micropython.native
def _invert_lower(lp, d):
    # L = W^-1 in place, row by row: L[i][j] = -(sum_{k=j}^{i-1} W[i][k] L[k][j]) / W[i][i];
    # columns j < i of row i are still W's when they are read, rows above are L's.
    for i in range(d):
        ci = i * d - ((i * (i - 1)) >> 1)
        wii = lp[ci]
        for j in range(i):
            cj = j * d - ((j * (j - 1)) >> 1)
            oj = cj - j  # L[k][j] at oj + k
            s = 0.0
            for k in range(j, i):
                ck = k * d - ((k * (k - 1)) >> 1)
                s += lp[ck - k + i] * lp[oj + k]  # W[i][k] * L[k][j]
            lp[oj + i] = -s / wii
        lp[ci] = 1.0 / wii


def precision_factor(lp, d):
    """Replace the covariance S in lp by the packed lower L with L L^T = S^-1, in place.

    S = W^T W with W lower (a Cholesky factorisation run from the last row up), then
    L = W^-1: L L^T = W^-1 W^-T = (W^T W)^-1. NotPositive if S is not positive definite."""
    j = _reverse_cholesky(lp, d)
    if j >= 0:
        raise NotPositive("the covariance is not positive definite at feature %d" % j)
    _invert_lower(lp, d)


@micropython.native
def trace_sq(lp):
    """Sum of squares of the packed entries: trace(L L^T) = trace of the precision."""
    s = 0.0
    for i in range(len(lp)):
        x = lp[i]
        s += x * x
    return s


# ---- threshold ----------------------------------------------------------------------------

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
