"""The q15 backend's kernels: viper code on int views of backend_q15's buffers, no float, no heap.

    from vwatch import q15_spectrum
    e = q15_spectrum.fexp(z, n); top = q15_spectrum.fconv(z, n, e, pr)   # float samples, or
    top = q15_spectrum.iconv(z, ring.buf, ring.at(ch, 0) | c << 20, pr)  # raw int16 (a ring's)
    top = q15_spectrum.center(z, n, pr)      # max |v - mean| of values converted otherwise
    q15_spectrum.window(z, z, hann, pr); q15_spectrum.bitrev(z, pairs, len(pairs))
    l1 = q15_spectrum.stage(z, tw, span, pr)      # once per FFT stage, pr[_SHIFT] = 0 or 1
    q15_spectrum.split(z, z, tw, pr); q15_spectrum.bands(z, edges, acc, pr)

Word-size rules (viper ints are 32-bit on boards, 64-bit on the unix port):
- every intermediate stays inside the signed 32-bit range (tests/test_q15.py checks a
  model of this arithmetic on full-scale inputs);
- ptr16 and ptr32 loads zero-extend on some ports and not on others, so a signed int16 is
  sign-extended by hand (`(v ^ 0x8000) - 0x8000`) and ptr32 arrays only ever hold values >= 0
  (or raw bit patterns that are picked apart with shifts and masks).
Separate from backend_q15 so its buffers are allocated before this module is compiled.
"""

import micropython
from micropython import const

# Slots of the int32 parameter array pr (all >= 0 when a kernel loads them).
N = const(0)  # window length
SUM = const(1)  # out: sum of v (signed, read only by Python)
MEAN = const(2)  # out: mean of v (rounded) + _V_OFFSET
RS = const(3)  # right shift d -> dn
LS = const(4)  # left shift d -> dn
STATS = const(5)  # nonzero: accumulate the statistics
S2HI = const(6)  # out: sum dn^2 = S2HI * 2^15 + S2LO
S2LO = const(7)
S4HI = const(8)  # out: sum q^2 = S4HI * 2^15 + S4LO, q = round(dn^2 / 2^15)
S4LO = const(9)
PEAK = const(10)  # out: max dn^2
SHIFT = const(11)  # in: halve this FFT stage's outputs
NYQ = const(12)  # out: |X[N/2] / 2|^2
NB = const(13)  # bands
L1 = const(14)  # out of window(): max |re| + |im| of the windowed complex pairs
LOG2N = const(15)  # log2 N
# Slots 16 .. 27 are vwatch.q15_score's (its SIZE counts them all), then iconv's:
WRAP = const(28)  # in: int16 slots of the ring iconv gathers from
RAW = const(29)  # out of iconv: max |raw sample|

_K = const(18)  # bits of v: |v| <= 2^18, so N <= 4096 values sum inside 2^30
_V_OFFSET = const(0x40000)  # 2^18: v + _V_OFFSET >= 0 in the int32 buffer
_HALF = const(0x4000)


@micropython.viper
def fexp(z: ptr32, n: int) -> int:
    # The largest exponent field of n float32 values (0: all zero). Bits 23..30 only, so a
    # sign-extended load gives the same answer.
    e = 0
    for i in range(n):
        x = (z[i] >> 23) & 0xFF
        if x > e:
            e = x
    return e


@micropython.viper
def fconv(z: ptr32, n: int, emax: int, pr: ptr32) -> int:
    # float32 x -> v = round(x * 2^(126 + K - emax)), |v| <= 2^K, stored as v + _V_OFFSET in place;
    # their sum and rounded mean. Returns max |v - mean|, as center() would.
    acc = 0
    lo = 0x40000
    hi = 0 - 0x40000
    for i in range(n):
        b = z[i]
        e = (b >> 23) & 0xFF
        v = 0
        sh = 24 - _K + emax - e
        if e != 0 and sh < 25:
            m = (b & 0x7FFFFF) | 0x800000
            v = (m + (1 << (sh - 1))) >> sh  # sh >= 6: rounding half up
            if (b >> 31) & 1:
                v = 0 - v
        acc += v
        z[i] = v + _V_OFFSET
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    pr[SUM] = acc
    mean = (acc + (n >> 1)) >> pr[LOG2N]  # |acc| <= 2^30
    pr[MEAN] = mean + _V_OFFSET
    if hi - mean > mean - lo:
        return hi - mean
    return mean - lo


@micropython.viper
def iconv(z: ptr32, buf: ptr16, at: int, pr: ptr32) -> int:
    # One channel of a ring's raw int16 frames, gathered and converted in one pass: pr[N]
    # samples from buf[first] on, step apart (at = first | step << 20), wrapping at pr[WRAP],
    # -> v = raw * 8 (|v| <= 2^18) stored as v + _V_OFFSET in z[0 ..); pr[RAW] = max |raw|
    # (the ring's saturation check needs no pass of its own). Returns max |v - mean|, as
    # center() would: no second pass over the samples.
    i = at & 0xFFFFF
    step = at >> 20
    wrap = pr[WRAP]
    n = pr[N]
    acc = 0
    lo = 0x40000
    hi = 0 - 0x40000
    j = 0
    while j < n:  # (viper's `for j in range` costs about 10 instructions more a turn)
        v = ((int(buf[i]) ^ 0x8000) - 0x8000) << 3
        acc += v
        z[j] = v + _V_OFFSET
        if v < lo:
            lo = v
        if v > hi:
            hi = v
        i += step
        if i >= wrap:
            i -= wrap
        j += 1
    pr[RAW] = (hi if hi > 0 - lo else 0 - lo) >> 3
    pr[SUM] = acc
    mean = (acc + (n >> 1)) >> pr[LOG2N]
    pr[MEAN] = mean + _V_OFFSET
    if hi - mean > mean - lo:
        return hi - mean
    return mean - lo


@micropython.viper
def center(z: ptr32, n: int, pr: ptr32) -> int:
    # max |v - mean| (< 2^20, a small int on every port)
    mean = pr[MEAN]
    top = 0
    for i in range(n):
        d = z[i] - mean
        if d < 0:
            d = 0 - d
        if d > top:
            top = d
    return top


@micropython.viper
def window(z: ptr32, y: ptr16, hann: ptr16, pr: ptr32):
    # dn = (v - mean) shifted to |dn| < 2^15; statistics of dn; y = dn * Hann / 2 as int16,
    # written over the int32 values in increasing order (y[i] lies in z[i >> 1], already read).
    # hann: the window's first half times 2^15 (backend_q15.sine_tables).
    n = pr[N]
    mean = pr[MEAN]
    rs = pr[RS]
    ls = pr[LS]
    rnd = 0
    if rs:
        rnd = 1 << (rs - 1)
    stats = pr[STATS]
    h = n >> 1
    s2h = 0
    s2l = 0
    s4h = 0
    s4l = 0
    peak = 0
    l1 = 0
    prev = 0
    i = 0
    while i < n:  # (not `for i in range`: see iconv)
        d = z[i] - mean
        dn = ((d << ls) + rnd) >> rs
        if dn > 32767:  # rounding up the largest value
            dn = 32767
        if stats:
            d2 = dn * dn  # <= 2^30
            s2h += d2 >> 15
            s2l += d2 & 0x7FFF
            qq = (d2 + _HALF) >> 15  # <= 2^15
            q2 = qq * qq
            s4h += q2 >> 15
            s4l += q2 & 0x7FFF
            if d2 > peak:
                peak = d2
        hw = int(hann[i if i <= h else n - i])  # <= 32768
        v = (dn * hw + 0x8000) >> 16  # |v| <= 2^14
        y[i] = v
        if v < 0:
            v = 0 - v
        if i & 1:
            if v + prev > l1:
                l1 = v + prev
        prev = v
        i += 1
    pr[S2HI] = s2h
    pr[S2LO] = s2l
    pr[S4HI] = s4h
    pr[S4LO] = s4l
    pr[PEAK] = peak
    pr[L1] = l1


@micropython.viper
def bitrev(z: ptr32, pairs: ptr16, count: int):
    # Bit-reversal permutation of the complex int16 pairs, each moved as one raw 32-bit word:
    # swaps z[i] and z[r] for the (i, r) in pairs[0 .. count) (backend_q15.tables).
    for t in range(0, count, 2):
        i = int(pairs[t])
        r = int(pairs[t + 1])
        v = z[i]
        z[i] = z[r]
        z[r] = v


@micropython.viper
def stage(z: ptr16, tw: ptr16, span: int, pr: ptr32) -> int:
    # One radix-2 stage (butterflies `span` int16 apart) of the N/2-point complex FFT, outputs
    # halved when pr[SHIFT]; returns max |re| + |im| of the outputs for the next stage's rule.
    # Magnitudes stay <= 32760: see backend_q15 for why.
    n = pr[N]
    sh = pr[SHIFT]
    q = n >> 2
    half = span >> 1
    step = n // span
    top = 0
    k = 0
    for j in range(half):
        if k <= q:
            s = int(tw[k])
            c = int(tw[q - k])
        else:
            s = int(tw[2 * q - k])
            c = 0 - int(tw[k - q])
        a = 2 * j
        while a < n:
            b = a + span
            br = (int(z[b]) ^ 0x8000) - 0x8000
            bi = (int(z[b + 1]) ^ 0x8000) - 0x8000
            tr = (br * c + bi * s + _HALF) >> 15  # |b w| <= |b| 2^15 < 2^30
            ti = (bi * c - br * s + _HALF) >> 15
            ar = (int(z[a]) ^ 0x8000) - 0x8000
            ai = (int(z[a + 1]) ^ 0x8000) - 0x8000
            xr = ar + tr
            xi = ai + ti
            yr = ar - tr
            yi = ai - ti
            if sh:
                xr = (xr + 1) >> 1
                xi = (xi + 1) >> 1
                yr = (yr + 1) >> 1
                yi = (yi + 1) >> 1
            z[a] = xr
            z[a + 1] = xi
            z[b] = yr
            z[b + 1] = yi
            if xr < 0:
                xr = 0 - xr
            if xi < 0:
                xi = 0 - xi
            if yr < 0:
                yr = 0 - yr
            if yi < 0:
                yi = 0 - yi
            if xr + xi > top:
                top = xr + xi
            if yr + yi > top:
                top = yr + yi
            a += 2 * span
        k += step
    return top


@micropython.viper
def split(z: ptr16, p: ptr32, tw: ptr16, pr: ptr32):
    # From the half-length spectrum Z (int16 pairs in z[0..N)) to |X[k] / 2|^2 for
    # k = 0 .. N/2 - 1 in p[N/2 + k] (the int32 words after Z), k = N/2 in pr[NYQ].
    # X[k] = (Z[k] + conj Z[m-k]) / 2 + W^k (Z[k] - conj Z[m-k]) / 2i, m = N/2.
    n = pr[N]
    q = n >> 2
    h = n >> 1
    a = (int(z[0]) ^ 0x8000) - 0x8000
    b = (int(z[1]) ^ 0x8000) - 0x8000
    x = (a + b + 1) >> 1
    y = (a - b + 1) >> 1
    p[h] = x * x
    pr[NYQ] = y * y
    for k in range(1, q + 1):
        i = 2 * k
        j = n - i
        a = (int(z[i]) ^ 0x8000) - 0x8000
        b = (int(z[i + 1]) ^ 0x8000) - 0x8000
        c = (int(z[j]) ^ 0x8000) - 0x8000
        d = (int(z[j + 1]) ^ 0x8000) - 0x8000
        er = a + c  # 2 E
        ei = b - d
        orr = (b + d) >> 1  # O, halved again so the products stay < 2^30
        oi = (c - a) >> 1
        cs = int(tw[q - k])
        sn = int(tw[k])
        wr = (cs * orr + sn * oi + _HALF) >> 15  # W O
        wi = (cs * oi - sn * orr + _HALF) >> 15
        xr = (er + 2 * wr + 2) >> 2  # X[k] / 2
        xi = (ei + 2 * wi + 2) >> 2
        yr = (er - 2 * wr + 2) >> 2  # X[m-k] / 2 = (conj E - conj(W O)) / 2
        yi = (2 * wi - ei + 2) >> 2
        p[h + k] = xr * xr + xi * xi
        p[n - k] = yr * yr + yi * yi


@micropython.viper
def bands(p: ptr32, edges: ptr16, acc: ptr32, pr: ptr32):
    # acc[2b] * 2^15 + acc[2b + 1] = sum of |X[k] / 2|^2 over band b (two words: a band of
    # up to 2^16 bins of up to 2^30 each cannot overflow either).
    n = pr[N]
    h = n >> 1
    nb = pr[NB]
    lo = int(edges[0])
    for b in range(nb):
        hi = int(edges[b + 1])
        top = hi if hi <= h else h
        sh = 0
        sl = 0
        k = h + lo
        top += h
        while k < top:  # (not `for k in range`: see iconv)
            v = p[k]
            sh += v >> 15
            sl += v & 0x7FFF
            k += 1
        if hi > h:  # the Nyquist bin
            v = pr[NYQ]
            sh += v >> 15
            sl += v & 0x7FFF
        acc[2 * b] = sh
        acc[2 * b + 1] = sl
        lo = hi
