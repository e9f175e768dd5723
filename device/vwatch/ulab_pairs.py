"""The ulab backend's bands two channels per complex FFT; see backend_ulab for its buffers.

    from vwatch import ulab_pairs
    s = ulab_pairs.bands(fe, source, start, out)  # out: fe's features; returns the units
                                                  # per value of the window buffer

Two real channels x1, x2 go through one N-point complex FFT of z = x1 + i x2 (measured on
Cortex-M7: half the FFTs and half the FFT results' garbage, whose collections cost more than
the FFTs themselves in a fragmented heap). Its own module so that single-channel models do
not load its code.
"""

from ulab import numpy as np

from . import ulab_kernels


def bands(fe, source, start, out):
    """Band sums of 4 |X_k|^2 of every channel into out (ulab_kernels.compute scales them)."""
    nc = fe.model.channels
    per = fe.per
    nb = fe.model.bands
    if fe.r16 is None:  # no Ring (score_file's recording): one channel at a time
        for ch in range(nc):
            s = _single(fe, source, ch, start, out, ch * per)
        return s
    ch = 0
    while ch < nc:
        two = ch + 1 < nc
        s = ulab_kernels._prep(fe, source, ch, start, fe.zr, out, ch * per + nb)
        if two:
            ulab_kernels._prep(fe, source, ch + 1, start, fe.zi, out, (ch + 1) * per + nb)
        else:  # an odd channel out: with x2 = 0 the same sums give 4 |X1_k|^2
            fe.zi *= fe.z0
        _pair(fe, out, ch * per, (ch + 1) * per, two)
        ch += 2
    return s


def _single(fe, source, ch, start, f, pos):
    # One channel read into the upper half of the pair buffer through a memoryview (the
    # source's per-sample stores into an ndarray would leave garbage each), its FFT, and
    # 4 |X_k|^2 into the same bins as a pair's x1.
    n = fe.n
    x = fe.up
    s = ulab_kernels._prep(fe, source, ch, start, x, f, pos + fe.model.bands)
    c = ulab_kernels.FFT(x)
    zf = np.frombuffer(c, dtype=np.float)
    p = fe.lo
    p *= fe.z0
    p += zf[2 : n + 2 : 2]
    p *= p
    t = fe.tv  # x is free now
    t *= fe.z0
    t += zf[3 : n + 3 : 2]
    t *= t
    p += t
    p *= 4.0
    if fe.dc:
        r = zf[0]
        fe.mv[0] = 4.0 * r * r
    for v in fe.views:
        f[pos] = np.sum(v)
        pos += 1
    return s


def _pair(fe, f, p1, p2, two):
    # Band sums of 4 |X1_k|^2 into f[p1 ...], of 4 |X2_k|^2 into f[p2 ...] when two.
    spectra(fe, two)
    for v in fe.views:
        f[p1] = np.sum(v)
        p1 += 1
    if two:
        for v in fe.views2:
            f[p2] = np.sum(v)
            p2 += 1


def spectra(fe, two):
    """4 |X1_k|^2 into fe.lo (bins 1..N/2; bin 0 before it) and, when two, 4 |X2_k|^2 into
    fe.lo2, of x1 in fe.zr and x2 in fe.zi (fe: a Features or a ulab_zoom.Zoom)."""
    # One complex FFT of z = x1 + i x2:
    n = fe.n
    c = ulab_kernels.FFT(fe.zc)
    zf = np.frombuffer(c, dtype=np.float)
    ar = zf[2 : n + 2 : 2]  # Z_k, k = 1..N/2
    ai = zf[3 : n + 3 : 2]
    br = zf[2 * n - 2 : n - 2 : -2]  # Z_(N-k), k = 1..N/2
    bi = zf[2 * n - 1 : n - 1 : -2]
    p = fe.lo
    p *= fe.z0
    p += ar
    p += br
    p *= p
    t = fe.tv  # (a temporary array would take the big hole that the next FFT result needs)
    t *= fe.z0
    t += ai
    t -= bi
    t *= t
    p += t
    if two:
        p = fe.lo2
        p *= fe.z0
        p += ai
        p += bi
        p *= p
        t *= fe.z0
        t += ar
        t -= br
        t *= t
        p += t
    if fe.dc:  # bin 0: 4 re_0^2 and 4 im_0^2
        mv = fe.mv
        r = zf[0]
        mv[0] = 4.0 * r * r
        r = zf[1]
        mv[fe.n // 2 + 1] = 4.0 * r * r
