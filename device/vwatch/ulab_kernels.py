"""The ulab backend's per-window work; see backend_ulab for the buffers it uses.

    from vwatch import ulab_kernels
    ulab_kernels.compute(fe, source, start)   # fe: a backend_ulab.Features
    s = ulab_kernels.score(fe)
"""

import math
import sys

from ulab import numpy as np

try:
    from ulab import utils
except ImportError:  # very old ulab: no utils module; sources are read as floats
    utils = None

FFT = np.fft.fft  # a module global, so a test can stand in an older ulab's tuple form


def pick_fft(n, isz, later=0):
    # np.fft.fft, the fastest, when the heap has room for its result beside the buffers and
    # the loop, with a margin, once ``later`` bytes more are allocated (a zoom block): in a
    # tight heap the garbage fragments it until a result no longer fits (a float replay in
    # 64 KB at N = 256 did; the seed rig with a zoom block in 129-137 KB on i386, after 12 to
    # 349 windows, before its buffers were counted here). Else the in-place spectrogram
    # (2.5x slower on Cortex-M7, allocates nothing).
    import gc

    gc.collect()
    if utils is None or not hasattr(utils, "spectrogram"):
        return "fft"
    margin = 49152 if sys.maxsize >> 32 else 24576  # 64-bit words: twice the garbage
    return "fft" if gc.mem_free() > 8 * isz * n + margin + later else "spectrogram"


_BLOCK = 12  # rows of L^T per block: 8 dots at d = 96, 11 % more floats than the triangle


def blocked_bytes(d, s=_BLOCK):
    # bytes of blocked_lt's arrays (4-byte floats) and their headers
    k = (d + s - 1) // s
    return 4 * (d * (d + 1) // 2 + k * s * (s - 1) // 2) + 64 * k


def blocked_lt(lp, d, s=_BLOCK):
    # The packed rows of L^T (row j: columns j..d-1) as row blocks [(r, B)]: B holds rows
    # r..r+s-1 over columns r..d-1 (zeros left of the diagonal), so that L^T v is
    # concatenate(dot(B, v[r:])) with one dot per block instead of one per row.
    import gc

    out = []
    p = 0
    for r in range(0, d, s):
        rows = min(s, d - r)
        gc.collect()  # the last block's garbage (row views) goes before this block comes
        b = np.zeros((rows, d - r))
        for i in range(rows):
            j = r + i
            q = p + d - j
            row = b[i, i:]
            row += lp[p:q]  # in place: a slice assignment would copy lp[p:q] first
            p = q
        out.append((r, b))
    return out


def _fill(fe, source, ch, start, x):
    # The channel's samples into x (fe.x or a view of the pair buffer); return the units
    # per value of x.
    r16 = fe.r16
    if r16 is not None:  # a Ring: its int16 frames through a strided view, converted by ulab
        n = fe.n
        c = source.channels
        cap = source.cap
        i = source.head + start
        if i >= cap:
            i -= cap
        k = cap - i
        x *= fe.z0  # (ulab has no copy into an array that does not allocate)
        if k >= n:
            x += r16[i * c + ch : (i + n) * c : c]
        else:  # the window wraps around the ring's end
            a = x[:k]
            a += r16[i * c + ch : cap * c : c]
            a = x[k:]
            a += r16[ch : (n - k) * c : c]
        return source.scale
    if x is fe.x and utils is not None and hasattr(source, "read_int16"):
        source.read_int16(ch, start, fe.n, fe.hi)
        utils.from_int16_buffer(fe.hi, out=x)
        return source.scale
    # (fe.up: through its memoryview, no ndarray store per sample)
    source.read(ch, start, fe.n, fe.upv if x is fe.up else x)
    return 1.0


def _prep(fe, source, ch, start, x, out, pos):
    # Channel ch into x, mean removed, its statistics into out[pos ...], Hann applied;
    # return the units per value of x.
    m = fe.model
    n = fe.n
    stats = m.stats
    eps = m.eps
    s = _fill(fe, source, ch, start, x)
    mean = np.mean(x)
    fe.m1v[0] = mean  # subtracted as a 1-element array: a float would be converted to one
    x -= fe.m1
    if stats:
        s2 = s * s
        if stats & 2:  # sum x^4 on x squared in place, then x again (no N-float buffer)
            x *= x
            m4 = np.dot(x, x) * (s2 * s2) / n
            _fill(fe, source, ch, start, x)
            x -= fe.m1
        m2 = np.dot(x, x) * s2 / n
        if stats & 1:
            out[pos] = 0.5 * math.log(m2 + eps)
            pos += 1
        if stats & 2:
            out[pos] = math.log((m4 + eps * eps) / (m2 * m2 + eps * eps))
            pos += 1
        if stats & 4:
            peak = max(np.max(x), -np.min(x)) * s
            out[pos] = 0.5 * math.log((peak * peak + eps) / (m2 + eps))
    x *= fe.hann
    return s


def _bands(fe, f, pos):
    # f[pos + b] = sum of |X_k|^2 over band b (unscaled) of fe.x, which it overwrites.
    if fe.fft == "spectrogram":
        utils.spectrogram(fe.x, scratchpad=fe.sp, out=fe.spo)
        pw = fe.pw
        pw *= pw
    else:
        c = FFT(fe.x)
        if isinstance(c, tuple):  # older ulab: (re, im), summed over views made here
            p = c[0]
            p *= p
            im = c[1]
            im *= im
            p += im
            e = fe.model.edges
            for b in range(len(fe.views)):
                f[pos + b] = np.sum(p[e[b] : e[b + 1]])
            return
        pw = fe.sp  # N + 2 floats: |X_k|^2 as (re^2, im^2) pairs, k = 0..N/2
        pw *= fe.z0
        pw += np.frombuffer(c, dtype=np.float, count=fe.n + 2)
        pw *= pw
    for v in fe.views:
        f[pos] = np.sum(v)
        pos += 1


def compute(fe, source, start):
    """Fill fe.f with the features of the window starting at frame ``start``."""
    m = fe.model
    fa = fe.fa
    # single values go into the array('f') under fa (a store into an ndarray costs a view,
    # about 480 bytes and thousands of instructions); float64 builds keep fa apart
    out = fe.f if fe.f32 else fa
    nb = m.bands
    per = fe.per
    nc = m.channels
    # A Ring's frames as one int16 array (viper would be slower), for this window only: kept
    # on fe, it would hold the ring's buffer alive as long as fe (a stale pointer to fe on
    # the C stack after run() then kept 30 KB from the collector)
    fe.r16 = None
    if hasattr(source, "head") and hasattr(source, "buf") and hasattr(source, "cap"):
        fe.r16 = np.frombuffer(source.buf, dtype=np.int16)
    scale = fe.scale
    if fe.pairs is not None:  # two channels per FFT (ulab_pairs)
        s = fe.pairs(fe, source, start, out)
        scale *= 0.25
    else:
        for ch in range(nc):
            s = _prep(fe, source, ch, start, fe.x, out, ch * per + nb)
            _bands(fe, out, ch * per)
    fe.scv[0] = scale * s * s  # as 1-element arrays: a float operand allocates its conversion
    fe.epsv[0] = m.eps
    for v in fe.bv:  # each channel's bands (all channels' at once without statistics)
        v *= fe.sc
        v += fe.epsa
        np.log(v, out=v)
    fe.r16 = None
    f = fe.f
    if not fe.f32:  # fa is float64 here: f gets its values
        for i in range(len(f)):
            f[i] = fa[i]
    return f


def score(fe):
    """Squared Mahalanobis distance (f - mu)^T P (f - mu) of the last computed window; with
    K components (operating modes) the smallest of the K."""
    if not fe.f32:
        return fe.float_scoring.score(fe.model, fe.f, fe.v)
    v = fe.v
    d = len(v)
    best = None
    for mu, lp, w, a, g in fe.comps:
        v *= fe.z0
        v += fe.fa
        v -= mu
        if fe.lt is not None:  # L^T v a block of rows at a time (K = 1 only)
            s = 0.0
            for b, vb in fe.lt:
                z = np.dot(b, vb)
                s += np.dot(z, z)
        elif a is not None:  # PCA: sum_i w_i v_i^2 + sum_k g_k (A_k . v)^2
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
