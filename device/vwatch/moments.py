"""Mean and co-moments of feature vectors for on-board learning (phase 1 of vwatch.learning),
accumulated in float32 arrays the caller owns (the model's own mu and packed lp).

    acc = Moments(mu, lp, d)    # mu: d floats (the shift, then the mean), lp: packed d(d+1)/2
    acc.add(f)                  # one window's features: shifted, compensated sums
    acc.finish()                # mu = mean, lp = covariance (1/n, as scikit-learn's)

Packed layout (docs/model-format.md): column j of the lower triangle, rows j .. d-1, one
contiguous run after the other. Works with either float width of arithmetic (the unix port
computes in float64, boards in float32): the rounding is read back from the float32 store.
Costs: 12d bytes and, where the heap has room, a compensation array of 2d(d+1) bytes (freed by
finish()); add() is d(d+1)/2 (compensated) multiply-adds, all boxed floats on most ports.
"""

from array import array

import micropython


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
        # compensate: True (allocate it if the heap has room), False, or an array of
        # len(lp) floats allocated earlier, while the heap was still in one piece
        self.c2 = None
        if compensate is True:
            try:
                self.c2 = array("f", range(len(lp)))
            except MemoryError:  # the shift alone: error ~ sqrt(n) float32 roundings
                pass
        elif compensate:
            self.c2 = compensate
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
