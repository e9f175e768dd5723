"""Covariance to precision factor for on-board learning (vwatch.learning), in place on the
model's packed array: Oracle Approximating Shrinkage, then the Cholesky factor of the precision.

    a, m = oas(lp, d, n)        # shrink the covariance in lp (as sklearn.covariance.OAS)
    precision_factor(lp, d)     # lp: packed L with L L^T = inverse(covariance)
    trace_sq(lp)                # trace of the precision, from its factor

Packed layout (docs/model-format.md): column j of the lower triangle, rows j .. d-1, one
contiguous run after the other: entry (i, j), i >= j, at col(j) + i - j.
Costs: oas() two passes over lp; the factor about d^3/3 multiply-adds in place (d = 96: about
300 000; tools/bench_learn.py counts instructions); nothing allocated but boxed floats.
"""

import math

import micropython


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
