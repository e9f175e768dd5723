"""Float steps on the feature vector shared by the backends: statistics' logs and the score.

    pos = float_score.stat_features(f, pos, s2, s4, peak2, n, eps, stats)
    s = float_score.score(m, f, v)   # either model form, K components; v: work array of d floats
    s = float_score.mahal(lp, f, mu, v, d)

Its own small module so that a backend loads these without another backend's kernels (the
ulab and q15 backends need no float FFT). Allocates nothing but boxed floats, on ports that
box them.
"""

import math

import micropython


def stat_features(f, pos, s2, s4, peak2, n, eps, stats):
    """docs/features.md step 6 from sum d^2, sum d^4 and max d^2 over the window: write the
    enabled statistics into f from pos on; return the next free position."""
    m2 = s2 / n
    if stats & 1:
        f[pos] = 0.5 * math.log(m2 + eps)
        pos += 1
    if stats & 2:
        f[pos] = math.log((s4 / n + eps * eps) / (m2 * m2 + eps * eps))
        pos += 1
    if stats & 4:
        f[pos] = 0.5 * math.log((peak2 + eps) / (m2 + eps))
        pos += 1
    return pos


@micropython.native
def mahal(lp, f, mu, v, d):
    # sum_j (sum_{i>=j} L[i][j] (f[i] - mu[i]))^2, column j of L read as one contiguous run
    for i in range(d):
        v[i] = f[i] - mu[i]
    s = 0.0
    p = 0
    for j in range(d):
        acc = 0.0
        for i in range(j, d):
            acc += lp[p] * v[i]
            p += 1
        s += acc * acc
    return s


def score(m, f, v):
    """Squared distance (f - mu)^T P (f - mu) of features f under model m, in the form the
    model file holds: packed Cholesky factor (p = 0, d^2/2 multiply-adds) or PCA reduction
    (p > 0, d(p + 2)); with K components (operating modes) the smallest of their K
    distances. v: work array of d floats, overwritten with f - mu of the last component."""
    if m.k == 1:
        return one(m, m.mu, m.lp, m.w, m.a, m.g, f, v)
    best = None
    for mu, lp, w, a, g in m.comps:  # a tuple: iterating and unpacking allocate nothing
        s = one(m, mu, lp, w, a, g, f, v)
        if best is None or s < best:
            best = s
    return best


def one(m, mu, lp, w, a, g, f, v):
    """The distance to one component (mu and its precision's form)."""
    if m.p:
        return lowrank(w, a, g, f, mu, v, m.d, m.p)
    return mahal(lp, f, mu, v, m.d)


@micropython.native
def lowrank(w, a, g, f, mu, v, d, p):
    # sum_i w[i] v[i]^2 + sum_k g[k] (sum_i A[k][i] v[i])^2, row k of A one contiguous run.
    # g < 0: the second sum takes back the part of the first that the components explain.
    s = 0.0
    for i in range(d):
        x = f[i] - mu[i]
        v[i] = x
        s += w[i] * x * x
    q = 0
    for k in range(p):
        acc = 0.0
        for i in range(d):
            acc += a[q] * v[i]
            q += 1
        s += g[k] * acc * acc
    return s
