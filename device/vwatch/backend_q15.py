"""Feature backend in fixed point (Q15): viper integer kernels, for boards without an FPU.

    from vwatch import backend_q15
    fe = backend_q15.Features(model)      # allocates every buffer now
    fe.compute(source, start)        # fe.f: the window's features (array('f'), d values)
    fe.mahal()                       # fe.sv[0]: squared Mahalanobis distance, no allocation
    s = fe.score()                   # the same, returned (a float: boxed on most ports)

"auto" picks it when ulab is missing and the MCU has no FPU (vwatch.fpu). The spec is
docs/features.md; the accuracy of this backend is in its "q15 backend" section.

Per channel: ``source.read`` puts float32 samples into z (or, from a source with
``read_int16(ch, start, n, out)`` and ``scale``, a vwatch.ring.Ring, raw int16 samples: no
float at all); the kernels (vwatch.q15_spectrum) then work on int views of that same array:
1. the samples become integers v with |v| <= 2^18 (raw int16 times 8, or the float bits with
   one exponent for the window, which keeps int16 data exact); the mean is removed in integers;
2. d = v - mean is shifted to |dn| < 2^15 (statistics from dn, two-word sums), the periodic
   Hann window applied (|y| <= 2^14) and written as int16 over the first half of z;
3. an N/2-point complex radix-2 FFT with block floating point: a stage halves its outputs
   when the previous max |re| + |im| exceeds _GROW, else it may double them. So magnitudes
   stay <= 2 * 16370 + 1 after an unhalved stage and grow by < 1.5 per halved one (rounding):
   <= 32760 after 11 stages, inside int16, and |b w| < 2^30. Stages halved: T;
4. the split step gives |X[k] / 2|^2 (< 2^30) in the second half of z, summed per band in
   two words;
5. (vwatch.q15_score) the logarithms of the band and moment sums in Q16 integers, the scaling of
   steps 1 to 3 added as multiples of ln 2, eps added in the log domain: the features in Q16
   (fq) and as float32 (f). The score runs on fq and the model's float32 arrays in integers.
Per window on a ring, nothing is allocated, not even a boxed float (tests/test_q15.py).
Costs: 4N bytes for z, N/2 for a quarter-wave Q15 sine table, N for half a Hann window,
about N for the bit reversal's pairs, 12(B + 3) for the band and
moment sums and their logs, 24d (+ 8p for a PCA model) for the features (float and Q16)
and the score's words, and 1.5 KB of log tables. Models with d > 1000 score in floats.
"""

import math
from array import array

from micropython import const

_GROW = const(16370)  # max |re| + |im| below which a stage may skip its halving
_Q16_OFFSET = const(0x2000000)  # vwatch.q15_score: signed slots hold value + _Q16_OFFSET
_MAX_D = const(1000)  # q15_score.score's words hold up to this many features (32-bit bound)
_NAN = float("nan")  # the score of a window that held NaN or infinity


def _q16(x):
    return int(math.floor(x * 65536 + 0.5))


def tables(n):
    """An N-point window's tables: round(2^15 sin(2 pi k / N)) for k <= N/4 (the FFT's
    twiddles); the periodic Hann window (1 - cos(2 pi i / N)) / 2 times 2^15 for i <= N/2
    (q15_spectrum.window); the pairs (i, r), i < r, that the N/2-point FFT's bit reversal swaps
    (q15_spectrum.bitrev)."""
    q = n // 4
    tw = array("H", range(q + 1))
    for k in range(q + 1):
        tw[k] = int(math.floor(32768 * math.sin(2 * math.pi * k / n) + 0.5))
    hann = array("H", range(2 * q + 1))
    for i in range(2 * q + 1):
        c = tw[q - i] if i <= q else -tw[i - q]
        hann[i] = (32769 - c) >> 1  # <= 32768
    m = n // 2
    bits = 0
    while 1 << bits < m:
        bits += 1
    pairs = []
    for i in range(m):
        r = 0
        for b in range(bits):
            r |= (i >> b & 1) << (bits - 1 - b)
        if i < r:
            pairs += (i, r)
    return tw, hann, array("H", pairs)


def spectrum(k, z, tab, pr, n, edges, acc):
    """Steps 2 to 4 (window, FFT with block floating point, split, band sums) on the centred
    int32 values in z, with the tables tab.tw, tab.hann, tab.swaps; returns stages halved.
    The zoom block (vwatch.q15_zoom) runs the same on its own buffers."""
    k.window(z, z, tab.hann, pr)
    k.bitrev(z, tab.swaps, len(tab.swaps))
    tw = tab.tw
    l1 = pr[k.L1]
    t = 0
    span = 2
    while span <= n >> 1:
        sh = 1 if l1 > _GROW else 0
        pr[k.SHIFT] = sh
        t += sh
        l1 = k.stage(z, tw, span, pr)
        span <<= 1
    k.split(z, z, tw, pr)
    k.bands(z, edges, acc, pr)
    return t


class Features:
    name = "q15"

    def __init__(self, model):
        n = model.window
        d = model.d
        self.model = model
        self.n = n
        self.z = array("f", range(n))  # float samples, then int16 spectrum + int32 powers
        self.tw, self.hann, self.swaps = tables(n)
        # Q15 tables of q15_score: ln(1 + i/256), i <= 256, and ln(1 + e^(-j/32)), j <= 512
        self.lt = array("H", range(257))
        for i in range(257):
            self.lt[i] = int(math.floor(32768 * math.log(1 + i / 256) + 0.5))
        self.st = array("H", range(513))
        for j in range(513):
            self.st[j] = int(math.floor(32768 * math.log(1 + math.exp(-j / 32)) + 0.5))
        nb = model.bands
        self.acc = array("i", range(2 * (nb + 3)))  # band sums, then the statistics' sums
        self.lnv = array("i", range(nb + 3))
        self.f = array("f", range(d))
        self.fq = array("i", range(d))  # the features in Q16, + _Q16_OFFSET
        self.sv = array("f", [0.0])  # the last score
        self.sc = array("f", [0.0]) if model.k > 1 else None  # one component's (K modes)
        self.per = nb + (model.stats & 1) + (model.stats >> 1 & 1) + (model.stats >> 2 & 1)
        # The score's words: v, then a term and its exponent per column of L, or per feature
        # and component of a low-rank (PCA) model, then d words for a float model's column
        # (q15_score.score). Beyond _MAX_D: floats (boxed).
        p = model.p
        floats = d > _MAX_D
        self.v = array("f", range(d)) if floats else None
        self.w = None if floats else array("i", range(4 * d + 2 * p))
        from . import q15_spectrum, q15_score  # compiled after the buffers, into the heap left

        self.float_scoring = None  # vwatch.float_score where the score is in floats
        if floats:
            from . import float_score

            self.float_scoring = float_score
        self.kernels = q15_spectrum
        self.scoring = q15_score
        # A learned model's score arrays as integers, converted in place once (q15_score.fixed):
        # this backend owns the model from here, as backend_ulab does when it blocks L^T. A model
        # being learned (n_train 0: vwatch.learn accumulates into lp, then writes it) stays
        # float. Per component (mu, lp, L's exponents, w, a, A's exponents, g).
        self.comps = tuple((mu, lp, None, w, a, None, g) for mu, lp, w, a, g in model.comps)
        if not self.float_scoring and model.n_train:
            comps = ()
            for mu, lp, w, a, g in model.comps:
                le = ae = None
                if lp is not None:
                    le = array("i", range(d))
                    q15_score.fixed(lp, d, 1, d, le)
                if a is not None:
                    ae = array("i", range(p))
                    q15_score.fixed(a, d, 0, p, ae)
                comps += ((mu, lp, le, w, a, ae, g),)
            self.comps = comps
            model.lp = model.a = None  # integers now: no other backend may read them
            model.comps = tuple((mu, None, w, None, g) for mu, lp, w, a, g in model.comps)
        pr = self.pr = array("i", range(q15_score.SIZE))
        pr[q15_spectrum.N] = n
        pr[q15_spectrum.NB] = nb
        pr[q15_spectrum.STATS] = model.stats
        l2n = 0
        while 1 << l2n < n:
            l2n += 1
        pr[q15_spectrum.LOG2N] = l2n
        # P = |X/2|^2 64 / (3 N^2)
        pr[q15_score.LNORM] = _q16(math.log(64.0 / (3.0 * n * n))) + _Q16_OFFSET
        pr[q15_score.LE] = _q16(math.log(model.eps)) + _Q16_OFFSET
        self.low = None  # the zoom block's low ring (vwatch.zoom), fed by the caller
        if model.zoom_r:
            from .q15_zoom import Zoom

            self.zq = Zoom(model, self)  # sets self.low
        self.shifts = 0  # FFT stages halved, last channel (for tests)
        self.src = None  # the last source, and whether it has read_int16
        self.ints = False
        self.nonfinite = False  # did the last window hold NaN or infinity? (not scored)
        self.peak = -1  # max |raw sample| of the last window read from a ring, else -1

    def __repr__(self):
        return "<Features q15 N=%d d=%d>" % (self.n, len(self.f))

    def _spectrum(self):
        # Steps 2 to 4 on the centred int32 values in z; returns stages halved.
        return spectrum(self.kernels, self.z, self, self.pr, self.n, self.model.edges, self.acc)

    def _source(self, source):
        # Once per source (getattr and the float log would allocate every window).
        self.src = source
        self.ints = hasattr(source, "at")  # a vwatch.ring.Ring: raw int16, gathered by iconv
        if self.ints:
            self.pr[self.kernels.WRAP] = len(source.buf)
        # 2 ln u1 = CU + KU ln 2 for a ring's u1 = scale / 8 (exactly KU ln 2 when the scale
        # is a power of two, as for int16 full scale: then ring and floats agree bit for bit)
        cu = 0
        self.ku = 0
        if self.ints:
            mant, ex = math.frexp(source.scale / 8)
            if mant == 0.5:
                mant, ex = 1.0, ex - 1
            cu = _q16(2 * math.log(mant))
            self.ku = 2 * ex
        self.pr[self.scoring.CU] = cu + _Q16_OFFSET

    def compute(self, source, start):
        """Fill self.f with the features of the window starting at frame ``start``."""
        m = self.model
        n = self.n
        z = self.z
        pr = self.pr
        acc = self.acc
        k = self.kernels
        k2 = self.scoring
        nb = m.bands
        if source is not self.src:
            self._source(source)
        self.nonfinite = False
        peak = -1
        for ch in range(m.channels):
            top = 0
            if self.ints:  # raw int16 (a ring): v = raw * 8, x = v * scale / 8
                top = k.iconv(z, source.buf, source.at(ch, start) | m.channels << 20, pr)
                if pr[k.RAW] > peak:
                    peak = pr[k.RAW]
                emax = 1
                pr[k2.KU] = self.ku + _Q16_OFFSET
            else:  # floats: v = x * 2^(144 - emax), one exponent for the window
                source.read(ch, start, n, z)
                emax = k.fexp(z, n)
                if emax == 255:  # exponent field all ones: NaN or infinity
                    self.nonfinite = True
                    emax = 0
                if emax:
                    top = k.fconv(z, n, emax, pr)
                    pr[k2.KU] = 2 * (emax - 144) + _Q16_OFFSET
            if top == 0:  # silence or DC: every band and moment is exactly 0
                for i in range(2 * nb + 6):
                    acc[i] = 0
            else:
                # |dn| = |d| 2^-e with e = RS - LS, the top in [2^14, 2^15]
                e = 0
                while top >> e >= 32768:
                    e += 1
                while e <= 0 and top << -e < 16384:
                    e -= 1
                pr[k.RS] = e if e > 0 else 0
                pr[k.LS] = -e if e < 0 else 0
                t = self._spectrum()
                self.shifts = t
                # x - mean = dn 2^e u1; y = dn w / 2; Z / 2^T
                pr[k2.E] = e + _Q16_OFFSET
                pr[k2.T] = t
                acc[2 * nb] = pr[k.S2HI]
                acc[2 * nb + 1] = pr[k.S2LO]
                acc[2 * nb + 2] = pr[k.S4HI]
                acc[2 * nb + 3] = pr[k.S4LO]
                acc[2 * nb + 4] = 0
                acc[2 * nb + 5] = pr[k.PEAK]  # < 2^30
            pr[k2.POS] = ch * self.per
            k2.logs(acc, nb + 3, self.lnv, self.lt)
            k2.chan(self.lnv, pr, self.st, self.fq)
        self.peak = peak
        if self.low is not None:
            self.zq.compute(self, self.low)
        k2.floats(self.fq, self.f, m.d)
        return self.f

    def mahal(self):
        """The squared Mahalanobis distance of the last computed window into self.sv[0]:
        integers only (nothing allocated) unless d > 1000."""
        m = self.model
        if self.float_scoring:
            self.sv[0] = self.float_scoring.score(m, self.f, self.v)
            return
        sv = self.sv if m.k == 1 else self.sc
        first = 1
        for mu, lp, le, w, a, ae, g in self.comps:  # a tuple: iterating allocates nothing
            if m.p:
                self.scoring.lowrank(w, a, ae, g, mu, self.fq, self.w, m.d, m.p, sv)
            else:
                self.scoring.score(lp, le, mu, self.fq, self.w, m.d, sv)
            if m.k > 1:  # K components (operating modes): the smallest distance
                self.scoring.smaller(self.sc, self.sv, first)
                first = 0

    def score(self):
        """Squared Mahalanobis distance ||L^T (f - mu)||^2 of the last computed window; NaN
        when it held NaN or infinite samples (docs/protocol.md: not scored)."""
        if self.nonfinite:
            return _NAN
        self.mahal()
        return self.sv[0]
