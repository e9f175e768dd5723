"""The pure backend's kernels: FFT, power and bands on float arrays, compiled native.

    from vwatch import pure_kernels
    s2, s4, peak = pure_kernels.prepare(z, tw, n, stats)   # mean, statistics sums, Hann window
    pure_kernels.reverse(z, n // 2); pure_kernels.fft(z, tw, n); pure_kernels.power(z, tw, n)
    pure_kernels.bands(z, edges, nb, n, out, pos, scale, eps)

Separate from backend_pure so the buffers are allocated before this (larger) module is compiled:
compiling leaves holes in a small heap. Nothing here allocates, except boxed floats on ports
that box them (most ports). See backend_pure for the layout of z and tw.
"""

import math

import micropython


@micropython.native
def prepare(z, tw, n, stats):
    # Remove the mean, return (sum d^2, sum d^4, max d^2) when stats asks, apply the Hann window.
    acc = 0.0
    for i in range(n):
        acc += z[i]
    mean = acc / n
    s2 = 0.0
    s4 = 0.0
    peak = 0.0
    if stats:
        for i in range(n):
            v = z[i] - mean
            v2 = v * v
            s2 += v2
            s4 += v2 * v2
            if v2 > peak:
                peak = v2
    q = n >> 2
    h = n >> 1
    z[0] = 0.0  # w[0] = 0
    z[h] = z[h] - mean  # w[N/2] = 1
    for i in range(1, h):
        # w[i] = w[N - i] = 0.5 - 0.5 cos(2 pi i / N); cos from the quarter-wave sine table
        w = 0.5 - 0.5 * tw[q - i] if i <= q else 0.5 + 0.5 * tw[i - q]
        z[i] = (z[i] - mean) * w
        z[n - i] = (z[n - i] - mean) * w
    return s2, s4, peak


@micropython.native
def reverse(z, m):
    # Bit-reversal permutation of m complex values stored (re, im) interleaved.
    r = 0
    h = m >> 1
    for i in range(m):
        if i < r:
            a = 2 * i
            b = 2 * r
            t = z[a]
            z[a] = z[b]
            z[b] = t
            t = z[a + 1]
            z[a + 1] = z[b + 1]
            z[b + 1] = t
        bit = h
        while r & bit:
            r ^= bit
            bit >>= 1
        r |= bit


@micropython.native
def fft(z, tw, n):
    # In-place radix-2 FFT of n/2 interleaved complex values, input in bit-reversed order.
    m = n >> 1
    q = n >> 2
    span = 2
    while span <= m:
        half = span >> 1
        step = n // span
        k = 0
        for j in range(half):
            if k <= q:
                s = tw[k]
                c = tw[q - k]
            else:
                s = tw[2 * q - k]
                c = -tw[k - q]
            for a in range(2 * j, n, 2 * span):
                b = a + span
                br = z[b]
                bi = z[b + 1]
                tr = br * c + bi * s
                ti = bi * c - br * s
                ar = z[a]
                ai = z[a + 1]
                z[b] = ar - tr
                z[b + 1] = ai - ti
                z[a] = ar + tr
                z[a + 1] = ai + ti
            k += step
        span <<= 1


@micropython.native
def power(z, tw, n):
    # Split the half-length FFT Z into X and store |X[k]|^2 in place:
    # k = 0 at z[0], k = N/2 at z[1], 0 < k < N/2 at z[2k].
    # X[k] = (Z[k] + conj Z[m-k]) / 2 + W^k (Z[k] - conj Z[m-k]) / 2i, m = N/2.
    q = n >> 2
    a = z[0]
    b = z[1]
    z[0] = (a + b) * (a + b)
    z[1] = (a - b) * (a - b)
    for k in range(1, q + 1):
        i = 2 * k
        j = n - i
        a = z[i]
        b = z[i + 1]
        c = z[j]
        d = z[j + 1]
        er = (a + c) * 0.5
        ei = (b - d) * 0.5
        pr = (b + d) * 0.5
        pi = (c - a) * 0.5
        cs = tw[q - k]
        sn = tw[k]
        wr = cs * pr + sn * pi
        wi = cs * pi - sn * pr
        xr = er + wr
        xi = ei + wi
        yr = er - wr  # X[m-k] = conj(E) - conj(W O)
        yi = wi - ei
        z[i] = xr * xr + xi * xi
        z[j] = yr * yr + yi * yi


@micropython.native
def bands(z, edges, nb, n, out, pos, scale, eps):
    # out[pos + b] = ln(scale * sum of |X[k]|^2 over band b + eps)
    h = n >> 1
    lo = edges[0]
    for b in range(nb):
        hi = edges[b + 1]
        acc = 0.0
        top = hi if hi <= h else h
        for k in range(lo, top):
            acc += z[2 * k]
        if hi > h:  # the Nyquist bin
            acc += z[1]
        out[pos + b] = math.log(acc * scale + eps)
        lo = hi
