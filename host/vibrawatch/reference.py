"""The reference implementation of vibrawatch's feature and score contract (version 2).

Plain loops, a naive O(N^2) DFT, no cleverness: this file is the executable form of
docs/features.md and the yardstick every fast path (numpy on the host; ulab and pure
MicroPython on the board) is tested against. It imports only ``math`` so it runs unchanged
under CPython and MicroPython (the tests run it on both). Slow is fine; wrong is not.

    import reference
    f = reference.features([[0.0, 1.0, 0.0, -1.0] * 16], edges=[1, 8, 32], eps=1e-6, stats=0)
    s = reference.score(f, mu, packed_l)
    # with a zoom block: history = per channel the R * N_z samples that end where the window ends
    f += reference.zoom_features(history, factor=16, edges=[1, 4, 8], eps=1e-6)
"""

import math

STAT_RMS = 1  # 0.5 * ln(m2 + eps)
STAT_KURTOSIS = 2  # ln((m4 + eps^2) / (m2^2 + eps^2))
STAT_CREST = 4  # 0.5 * ln((peak^2 + eps) / (m2 + eps))
STAT_BITS = (STAT_RMS, STAT_KURTOSIS, STAT_CREST)


def hann(n):
    """Periodic Hann window of length n: w[i] = 0.5 - 0.5 cos(2 pi i / n)."""
    return [0.5 - 0.5 * math.cos(2.0 * math.pi * i / n) for i in range(n)]


def power_spectrum(x):
    """One-sided power P[k], k = 0..N/2, of one channel's window x (spec steps 1-3)."""
    n = len(x)
    mean = sum(x) / n
    w = hann(n)
    y = [(x[i] - mean) * w[i] for i in range(n)]
    # 16 / (3 N^2) = 2 / (N * sum(w^2)): the sum of P over bins 1..N/2-1 is the mean square
    # of a broadband signal, and a sine of amplitude A on a bin puts A^2/3 on that bin.
    scale = 16.0 / (3.0 * n * n)
    power = []
    for k in range(n // 2 + 1):
        re = 0.0
        im = 0.0
        for i in range(n):
            angle = 2.0 * math.pi * ((k * i) % n) / n
            re += y[i] * math.cos(angle)
            im -= y[i] * math.sin(angle)
        power.append((re * re + im * im) * scale)
    return power


def band_energies(power, edges):
    """E[b] = sum of P[k] for edges[b] <= k < edges[b+1] (spec step 4)."""
    return [sum(power[edges[b] : edges[b + 1]]) for b in range(len(edges) - 1)]


def time_stats(x, eps, stats):
    """The optional time-domain statistics of one channel, in STAT_BITS order (spec step 6)."""
    n = len(x)
    mean = sum(x) / n
    d = [v - mean for v in x]
    m2 = sum(v * v for v in d) / n
    m4 = sum(v * v * v * v for v in d) / n
    peak = max(abs(v) for v in d)
    out = []
    if stats & STAT_RMS:
        out.append(0.5 * math.log(m2 + eps))
    if stats & STAT_KURTOSIS:
        out.append(math.log((m4 + eps * eps) / (m2 * m2 + eps * eps)))
    if stats & STAT_CREST:
        out.append(0.5 * math.log((peak * peak + eps) / (m2 + eps)))
    return out


def features(channels, edges, eps, stats=0):
    """Feature vector of one window: for each channel, ln(E[b] + eps) for every band, then
    the enabled statistics. ``channels`` is a list of C lists of N samples each."""
    out = []
    for x in channels:
        energies = band_energies(power_spectrum(x), edges)
        out.extend(math.log(e + eps) for e in energies)
        out.extend(time_stats(x, eps, stats))
    return out


def decimate(x, factor):
    """Block averages of ``factor`` samples: y[m] = (1/R) sum of x[m R .. m R + R - 1]."""
    return [sum(x[m * factor : (m + 1) * factor]) / factor for m in range(len(x) // factor)]


def zoom_features(history, factor, edges, eps):
    """The zoom block of one window (docs/features.md, "Zoom block"): for each channel, its
    R * N_z most recent samples (ending where the window ends) decimated by R, then steps 1-5
    with N_z for N: ln(E_z[b] + eps) over the zoom edges. No statistics."""
    out = []
    for x in history:
        energies = band_energies(power_spectrum(decimate(x, factor)), edges)
        out.extend(math.log(e + eps) for e in energies)
    return out


def first_window(window, hop, factor, zoom_window):
    """The first window index with a full zoom history: i H + N >= R N_z (0 without zoom)."""
    short = factor * zoom_window - window
    return 0 if factor == 0 or short <= 0 else (short + hop - 1) // hop


def packed_index(d, i, j):
    """Position of L[i][j] (i >= j) in the packed factor: column j of L from the diagonal
    down, columns one after another (the rows of L^T, upper triangle, row by row)."""
    return j * d - j * (j - 1) // 2 + (i - j)


def score(f, mu, packed_l):
    """Squared Mahalanobis distance s = ||L^T (f - mu)||^2, where P = L L^T is the precision."""
    d = len(mu)
    v = [f[i] - mu[i] for i in range(d)]
    s = 0.0
    for j in range(d):
        acc = 0.0
        for i in range(j, d):
            acc += packed_l[packed_index(d, i, j)] * v[i]
        s += acc * acc
    return s
