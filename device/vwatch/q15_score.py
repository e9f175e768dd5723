"""The q15 backend's per-feature step in integers: logarithms, features, score. No float, no heap.

    q15_score.logs(acc, count, lnv, lt)       # ln of two-word sums, Q16
    q15_score.chan(lnv, pr, st, fq)           # one channel's features, Q16 in fq
    q15_score.floats(fq, f, d)                # all of them as float32 in f
    q15_score.fixed(lp, d, 1, d, le)          # once: L's columns as integers, in place
    q15_score.score(lp, le, mu, fq, work, d, sv)    # squared Mahalanobis distance into sv[0]
    q15_score.score(lp, None, mu, fq, work, d, sv)  # the same of a float L (one being learned)
    q15_score.fixed(a, d, 0, p, ae)           # once: A's rows likewise, for a PCA (low-rank) model
    q15_score.lowrank(w, a, ae, g, mu, fq, work, d, p, sv)   # its score
    q15_score.smaller(sc, sv, first)          # sv[0] = sc[0] if first or smaller (K components)

Logarithms are Q16 integers (2^-16 nats, 1.5e-5): ln A for A = hi 2^15 + lo from the
leading bit and a 257-entry table of ln(1 + i/256) (Q15, linear interpolation); ln(x + eps)
as max(ln x, ln eps) + ln(1 + e^-|ln x - ln eps|), the last from a table in steps of 1/32 nat.
Features are written twice: Q16 (+ _Q16_OFFSET) for the score and as float32 bits, built from the
integer, for whoever reads fe.f. For the score, fixed() turns each column of L (row of A) of
a learned model, once and in place, into 28-bit integers against its largest exponent (a
model being learned stays float, a column converted at a time); v = f - mu as Q16, products summed exactly in three 15-bit words, then each sum rounded to 15 bits before
it is squared; the low-rank form's weights (w, g) multiply as 15-bit mantissas. Every
intermediate fits a signed 32-bit word (tests/test_q15.py runs this very code under CPython
with integers that check it). Floats are written as their bits through ptr16 halves,
little-endian, as on every MicroPython board.
"""

import micropython
from micropython import const

# Slots of pr shared with q15_spectrum (q15_spectrum uses 0 .. 15).
STATS = const(5)  # statistics bit set
NB = const(13)  # bands
LOG2N = const(15)  # log2 N
POS = const(16)  # in: first feature of this channel
E = const(17)  # in: shift exponent e + _Q16_OFFSET (|d| = |dn| 2^e)
T = const(18)  # in: FFT stages halved
KU = const(19)  # in: 2 ln u1 = CU + KU ln 2, KU + _Q16_OFFSET (u1: sample units of v)
CU = const(20)  # in: Q16 + _Q16_OFFSET
LNORM = const(21)  # in: ln(64 / (3 N^2)), Q16 + _Q16_OFFSET
LE = const(23)  # in: ln eps, Q16 + _Q16_OFFSET
SIZE = const(30)  # slots of pr (28 and 29: q15_spectrum's ring gather)

_Q16_OFFSET = const(0x2000000)  # 2^25: signed values are stored as value + _Q16_OFFSET >= 0
_EOFF = const(1024)  # exponents likewise
_LN2 = const(2907270)  # round(ln 2 * 2^22)
_NEG = const(-0x10000000)  # ln 0: far below anything, yet 2 _NEG fits 32 bits
_VMAX = const(0x7FFFFF)  # |f - mu| is clamped to 128 nats (Q16), see score
_SPMAX = const(0x100000)  # 16 nats: ln(1 + e^-16) < 2^-23 is 0
_NEGT = const(0x1000)  # a term's exponent word: this bit set, the term is subtracted
_KOFF = const(0x10000000)  # 2^28: fixed() stores a model's integers as k + _KOFF >= 0


@micropython.viper
def _ln2k(k: int) -> int:
    # k ln 2 in Q16, |k| < 700
    return (k * _LN2 + 32) >> 6


@micropython.viper
def _lse(a: int, b: int, table) -> int:
    # ln(e^a + e^b), Q16. The table comes as an object: a pointer passed between viper
    # functions is boxed as an int, which allocates where RAM lies above 2^30 (ESP32).
    st = ptr16(table)
    if a < b:
        t = a
        a = b
        b = t
    dl = a - b
    if dl >= _SPMAX:
        return a
    j = dl >> 11
    fr = dl & 0x7FF
    lo = int(st[j])
    return a + 2 * lo + (((int(st[j + 1]) - lo) * fr) >> 10)


@micropython.viper
def logs(acc: ptr32, count: int, lnv: ptr32, lt: ptr16):
    # lnv[i] = ln(acc[2i] 2^15 + acc[2i + 1]) in Q16, plus 1; 0 for a zero sum. Both words
    # are >= 0 and < 2^30.
    for i in range(count):
        hi = acc[2 * i]
        lo = acc[2 * i + 1]
        hi += lo >> 15
        lo &= 0x7FFF
        if hi == 0 and lo == 0:
            lnv[i] = 0
            continue
        s = 0  # A ~ x 2^s with x < 2^31
        if hi < 0x10000:
            x = (hi << 15) | lo
        else:
            p = 16
            while hi >> (p + 1):
                p += 1
            s = p - 15
            x = (hi << (30 - p)) | (lo >> s)
        p = 0
        while x >> (p + 1):
            p += 1
        r = (x << (30 - p)) & 0x3FFFFFFF  # the mantissa's fraction, Q30 (drop its top bit)
        j = r >> 22
        fr = (r >> 6) & 0xFFFF
        lo16 = int(lt[j])
        frac = 2 * lo16 + (((int(lt[j + 1]) - lo16) * fr) >> 15)
        lnv[i] = int(_ln2k(p + s)) + frac + 1


@micropython.viper
def floats(fq: ptr32, f: ptr16, d: int):
    # f[i] = the float32 bits of feature i, fq[i] - _Q16_OFFSET in Q16 (|x| < 2^24: exact)
    for i in range(d):
        x = fq[i] - _Q16_OFFSET
        if x == 0:
            f[2 * i] = 0
            f[2 * i + 1] = 0
            continue
        sign = 0
        if x < 0:
            sign = 0x8000
            x = 0 - x
        p = 0
        while x >> (p + 1):
            p += 1
        if p <= 23:
            m = x << (23 - p)
        else:
            m = x >> (p - 23)
        f[2 * i] = m & 0xFFFF
        f[2 * i + 1] = sign | ((p + 111) << 7) | ((m >> 16) & 0x7F)


@micropython.viper
def chan(lnv: ptr32, pr: ptr32, st, fq: ptr32):
    # One channel's features from lnv (the bands' logs, then sum dn^2, sum q^2, max dn^2):
    # docs/features.md steps 5 and 6 on the scaling recorded in pr.
    nb = pr[NB]
    stats = pr[STATS]
    pos = pr[POS]
    e = pr[E] - _Q16_OFFSET
    ku = pr[KU] - _Q16_OFFSET
    cu = pr[CU] - _Q16_OFFSET
    le = pr[LE] - _Q16_OFFSET
    l2n = pr[LOG2N]
    cb = pr[LNORM] - _Q16_OFFSET + cu + int(_ln2k(2 * (pr[T] + e + 1) + ku))
    for b in range(nb):
        a = lnv[b]
        x = le
        if a:
            x = int(_lse(a - 1 + cb, le, st))
        fq[pos + b] = x + _Q16_OFFSET
    if not stats:
        return
    pos += nb
    a = lnv[nb]
    m2 = _NEG  # ln of the mean square
    if a:
        m2 = a - 1 + cu + int(_ln2k(2 * e + ku - l2n))
    lm = int(_lse(m2, le, st))  # ln(m2 + eps)
    if stats & 1:
        fq[pos] = ((lm + 1) >> 1) + _Q16_OFFSET
        pos += 1
    if stats & 2:
        a = lnv[nb + 1]
        m4 = _NEG
        if a:
            m4 = a - 1 + 2 * cu + int(_ln2k(30 + 4 * e + 2 * ku - l2n))
        fq[pos] = int(_lse(m4, 2 * le, st)) - int(_lse(2 * m2, 2 * le, st)) + _Q16_OFFSET
        pos += 1
    if stats & 4:
        a = lnv[nb + 2]
        pk = _NEG
        if a:
            pk = a - 1 + cu + int(_ln2k(2 * e + ku))
        fq[pos] = ((int(_lse(pk, le, st)) - lm + 1) >> 1) + _Q16_OFFSET


@micropython.viper
def _diff(muo, fqo, wo, d: int):
    # w[i] = f - mu in Q16 (+ _Q16_OFFSET) from the float32 bits of mu, |f - mu| clamped to
    # 128 nats
    mu = ptr32(muo)
    fq = ptr32(fqo)
    w = ptr32(wo)
    for i in range(d):
        b = mu[i]
        ex = (b >> 23) & 0xFF
        q = 0
        if ex >= 134:  # |mu| >= 128 nats
            q = _VMAX
        elif ex > 109:
            sh = 134 - ex
            q = (((b & 0x7FFFFF) | 0x800000) + (1 << (sh - 1))) >> sh
        if (b >> 31) & 1:
            q = 0 - q
        v = fq[i] - _Q16_OFFSET - q
        if v > _VMAX:
            v = _VMAX
        if v < 0 - _VMAX:
            v = 0 - _VMAX
        w[i] = v + _Q16_OFFSET


@micropython.viper
def _fix(co, o: int, n: int, ko, q: int) -> int:
    # The run c[o .. o + n) of float32 values as integers k = c 2^(154 - emax) (|k| < 2^28:
    # 28 bits against the run's largest exponent emax, the smaller values' lowest bits
    # dropped), stored as k + _KOFF in k[q .. q + n) (k may be c itself, q = o); returns emax.
    c = ptr32(co)
    kq = ptr32(ko)
    emax = 0
    for i in range(o, o + n):
        ex = (c[i] >> 23) & 0xFF
        if ex > emax:
            emax = ex
    for i in range(n):
        b = c[o + i]
        ex = (b >> 23) & 0xFF
        k = 0
        if ex != 0 and emax - ex <= 28:
            k = (((b & 0x7FFFFF) | 0x800000) << 4) >> (emax - ex)
            if (b >> 31) & 1:
                k = 0 - k
        kq[q + i] = k + _KOFF
    return emax


@micropython.viper
def fixed(co, n: int, step: int, count: int, eo):
    # In place, once per learned model: `count` runs of float32 values in c (run j: n - j step
    # values, one after the other: the columns of a packed L, step 1, or the rows of A, step
    # 0) as _fix's integers; e[j] = run j's largest exponent.
    e = ptr32(eo)
    o = 0
    for j in range(count):
        m = n - j * step
        e[j] = int(_fix(co, o, m, co, o))
        o += m


@micropython.viper
def _dot(co, o: int, wo, j: int, n: int, r: int, emax: int):
    # z = sum_i c[o + i] v[j + i], i < n (c: a run made by fixed(), largest exponent emax;
    # v = w[..] - _Q16_OFFSET in Q16), as z = +-w[r] 2^(w[r + 1] - _EOFF) with w[r] <= 2^15: the
    # products summed exactly in three 15-bit words (n <= 1000).
    c = ptr32(co)
    w = ptr32(wo)
    w0 = 0
    w1 = 0
    w2 = 0
    for i in range(n):
        k = c[o + i] - _KOFF
        v = w[j + i] - _Q16_OFFSET
        vh = v >> 15
        vl = v & 0x7FFF
        kh = k >> 15
        kl = k & 0x7FFF
        w0 += kl * vl
        w1 += kh * vl + kl * vh + (w0 >> 15)
        w0 &= 0x7FFF
        w2 += kh * vh + (w1 >> 15)
        w1 &= 0x7FFF
    # the sum is (w2 2^30 + w1 2^15 + w0) 2^(emax - 170): keep its top 15 bits
    x = 30
    t = w2
    if -0x8000 <= w2 and w2 < 0x8000:
        x = 15
        t = (w2 << 15) + w1
        if -0x8000 <= t and t < 0x8000:
            x = 0
            t = (t << 15) + w0
    if t < 0:
        t = 0 - t
    k = 0
    while t >> k >= 0x8000:
        k += 1
    if k:
        t = (t + (1 << (k - 1))) >> k
    w[r] = t
    w[r + 1] = x + k + emax - 170 + _EOFF


@micropython.viper
def _total(wo, first: int, count: int, svo):
    # sv[0] = the float32 of sum over terms r of -+w[r] 2^(e - _EOFF), e = w[r + 1] & 0xFFF,
    # minus when w[r + 1] & _NEGT; a negative total (rounding) is 0.
    w = ptr32(wo)
    sv = ptr16(svo)
    top = 0  # the largest exponent of a nonzero term, + _EOFF
    for r in range(first, first + 2 * count, 2):
        e = w[r + 1] & 0xFFF
        if w[r] and e > top:
            top = e
    sh2 = 0  # the sum against that exponent, in two words
    sl2 = 0
    for r in range(first, first + 2 * count, 2):
        q = w[r]
        k = top - (w[r + 1] & 0xFFF)
        if q and k < 31:
            q >>= k
            if w[r + 1] & _NEGT:
                sh2 -= q >> 15
                sl2 -= q & 0x7FFF
            else:
                sh2 += q >> 15
                sl2 += q & 0x7FFF
    sh2 += sl2 >> 15
    sl2 &= 0x7FFF
    sv[0] = 0
    sv[1] = 0
    if sh2 < 0 or (sh2 == 0 and sl2 == 0):
        return
    top -= _EOFF
    if sh2 < 0x10000:
        x = (sh2 << 15) | sl2
    else:
        k = 16
        while sh2 >> (k + 1):
            k += 1
        x = (sh2 << (30 - k)) | (sl2 >> (k - 15))
        top += k - 15
    k = 0
    while x >> (k + 1):
        k += 1
    if k > 23:
        m = (x + (1 << (k - 24))) >> (k - 23)
        if m >> 24:
            m >>= 1
            k += 1
    else:
        m = x << (23 - k)
    be = k + top + 127
    if be >= 255:  # infinity: far above any threshold
        sv[1] = 0x7F80
    elif be > 0:
        sv[0] = m & 0xFFFF
        sv[1] = (be << 7) | ((m >> 16) & 0x7F)


@micropython.viper
def score(lp, le, mu, fq, wo, d: int, sv):
    # sum_j (sum_{i>=j} L[i][j] v[i])^2, v = f - mu, column j of L the run of d - j values
    # from lp[p]: made by fixed() with exponents le, or (le None: a model being learned) still
    # float32, converted column by column into w[3d ..]. w: 4d words: v, then per column its
    # rounded sum squared and the exponent, then that scratch.
    w = ptr32(wo)
    e = ptr32(le if le else wo)
    fix = 0 if le else 1
    _diff(mu, fq, wo, d)
    p = 0
    for j in range(d):
        r = d + 2 * j
        if fix == 0:
            _dot(lp, p, wo, j, d - j, r, e[j])
        else:
            _dot(wo, 3 * d, wo, j, d - j, r, int(_fix(lp, p, d - j, wo, 3 * d)))
        t = w[r]
        w[r] = t * t  # <= 2^30
        w[r + 1] = 2 * (w[r + 1] - _EOFF) + _EOFF
        p += d - j
    _total(wo, d, d, sv)


@micropython.viper
def _times(wo, r: int, fo, i: int, ex: int):
    # w[r] (<= 2^30, exponent ex) times the float32 f[i]: the term's 15-bit x 15-bit product,
    # its exponent and sign in w[r], w[r + 1] (float bits stay in arrays: as arguments, those
    # above 2^30 would be boxed as big ints on a 32-bit board)
    w = ptr32(wo)
    b = ptr32(fo)[i]
    e = (b >> 23) & 0xFF
    q = (w[r] + 0x4000) >> 15  # <= 2^15
    m = (((b & 0x7FFFFF) | 0x800000) + 0x100) >> 9  # <= 2^15
    if e == 0:
        q = 0
    w[r] = q * m
    w[r + 1] = ex + 15 + e - 141 + _EOFF
    if (b >> 31) & 1:
        w[r + 1] = w[r + 1] | _NEGT


@micropython.viper
def lowrank(wt, a, ae, g, mu, fq, wo, d: int, p: int, sv):
    # sum_i wt[i] v[i]^2 + sum_k g[k] (sum_i A[k][i] v[i])^2, v = f - mu, row k of A the run
    # of d values from a[k d] (made by fixed() with exponents ae, or, ae None, float32 as in
    # score()). w: 4d + 2p words: v, then a term and its exponent per i and k, then scratch.
    w = ptr32(wo)
    e = ptr32(ae if ae else wo)
    fix = 0 if ae else 1
    _diff(mu, fq, wo, d)
    for i in range(d):
        r = d + 2 * i
        v = w[i] - _Q16_OFFSET
        if v < 0:
            v = 0 - v
        k = 0
        while v >> k >= 0x8000:
            k += 1
        if k:
            v = (v + (1 << (k - 1))) >> k  # v = this 2^(k - 16) nats
        w[r] = v * v
        _times(wo, r, wt, i, 2 * (k - 16))
    for j in range(p):
        r = 3 * d + 2 * j
        if fix == 0:
            _dot(a, j * d, wo, 0, d, r, e[j])
        else:
            q = 3 * d + 2 * p
            _dot(wo, q, wo, 0, d, r, int(_fix(a, j * d, d, wo, q)))
        t = w[r]
        w[r] = t * t
        _times(wo, r, g, j, 2 * (w[r + 1] - _EOFF))
    _total(wo, d, d + p, sv)


@micropython.viper
def smaller(sco, svo, first: int):
    # sv[0] = sc[0] when first or sc[0] < sv[0]. Scores are >= 0 or +inf (_total), and such
    # float32 values order as their bit patterns: the smallest of K distances without a float.
    sc = ptr32(sco)
    sv = ptr32(svo)
    if first or sc[0] < sv[0]:
        sv[0] = sc[0]
