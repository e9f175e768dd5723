"""The ulab backend's per-window work; see fe_ulab for the buffers it uses.

    from vwatch import ulab_k
    ulab_k.compute(fe, source, start)   # fe: an fe_ulab.Features
    s = ulab_k.score(fe)

Separate from fe_ulab so the buffers are allocated before this module is compiled: compiling
leaves holes in a small heap.
"""

import math

from ulab import numpy as np

try:
    from ulab import utils
except ImportError:  # very old ulab: no utils module, the fft path still works
    utils = None

FFT = np.fft.fft  # a module global, so a test can stand in an older ulab's tuple form


def pick_fft(fe):
    if utils is not None and hasattr(utils, "spectrogram"):
        try:
            utils.spectrogram(fe.x, scratchpad=fe.sp, out=fe.lo)
            return "spectrogram"
        except TypeError:  # ulab before scratchpad= and out=
            pass
    return "fft"


def fill(fe, source, ch, start):
    # The channel's samples into fe.x; raw int16 (or float32 on float32 builds) convert
    # in C, anything else goes through source.read one sample at a time.
    n = fe.n
    kind = getattr(source, "kind", None)
    c = getattr(source, "channels", 1)
    if kind == "h" or (kind == "f" and fe.f32):
        per = len(fe.cbuf) // c
        cbuf = fe.cbuf if kind == "h" else fe.fbuf
        x = fe.x
        pos = 0
        while pos < n:
            k = min(per, n - pos)
            source.read_raw(start + pos, k, fe.raw)
            if kind == "h":
                utils.from_int16_buffer(fe.raw16, out=cbuf)
            dst = x[pos : pos + k]
            dst *= 0.0
            dst += cbuf[ch : k * c : c]
            pos += k
        if kind == "h":  # the source's units per count: a sensor's scale, or 1/32768 (WAV)
            x *= getattr(source, "scale", 1.0 / 32768)
    else:
        source.read(ch, start, n, fe.x)


def power(fe):
    # |X[k]|^2 (unscaled) of fe.x for k = 0..N/2 into an array the band views can sum.
    x = fe.x
    if fe.fft == "spectrogram":
        utils.spectrogram(x, scratchpad=fe.sp, out=fe.lo)
        lo = fe.lo
        lo *= lo
        return None
    c = FFT(x)
    if isinstance(c, tuple):  # older ulab: (re, im)
        p = c[0]
        p *= p
        im = c[1]
        im *= im
        p += im
    else:
        p = abs(c)
        p *= p
    return p


def compute(fe, source, start):
    """Fill fe.f with the features of the window starting at frame ``start``."""
    m = fe.model
    n = fe.n
    x = fe.x
    lo = fe.lo
    f = fe.f
    eps = m.eps
    stats = m.stats
    nb = m.bands
    scale = fe.scale
    e = m.edges
    pos = 0
    for ch in range(m.channels):
        fill(fe, source, ch, start)
        x -= np.sum(x) / n
        if stats:
            m2 = np.dot(x, x) / n
            peak = max(np.max(x), -np.min(x))
            if stats & 2:
                lo *= 0.0
                lo += x
                lo *= lo
                m4 = np.dot(lo, lo) / n
        x *= fe.hann
        p = power(fe)
        for b in range(nb):
            if p is None:
                acc = np.sum(fe.views[b])
            else:
                acc = np.sum(p[e[b] : e[b + 1]])
            f[pos + b] = math.log(acc * scale + eps)
        pos += nb
        if stats & 1:
            f[pos] = 0.5 * math.log(m2 + eps)
            pos += 1
        if stats & 2:
            f[pos] = math.log((m4 + eps * eps) / (m2 * m2 + eps * eps))
            pos += 1
        if stats & 4:
            f[pos] = 0.5 * math.log((peak * peak + eps) / (m2 + eps))
            pos += 1
    return f


def score(fe):
    """Squared Mahalanobis distance (f - mu)^T P (f - mu) of the last computed window; with
    K components (operating modes) the smallest of the K."""
    if not fe.f32:
        return fe.vec.score(fe.model, fe.f, fe.v)
    d = len(fe.f)
    v = fe.v
    best = None
    for mu, lp, w, a, g in fe.comps:
        v *= 0.0
        v += fe.fv
        v -= mu
        if a is not None:  # PCA: sum_i w_i v_i^2 + sum_k g_k (A_k . v)^2
            z = np.dot(a, v)
            z *= z
            s = np.dot(v * v, w) + np.dot(z, g)
        else:
            s = 0.0
            p = 0
            for j in range(d):
                q = p + d - j
                acc = np.dot(lp[p:q], v[j:])
                s += acc * acc
                p = q
        if best is None or s < best:
            best = s
    return best
