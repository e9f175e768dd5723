"""Feature backend in fixed point (Q15): viper integer kernels, for boards without an FPU.

    from vwatch import fe_q15
    fe = fe_q15.Features(model)      # allocates every buffer now
    fe.compute(source, start)        # fe.f: the window's features (array('f'), d values)
    s = fe.score()                   # squared Mahalanobis distance of fe.f

Chosen only on request (`vwatch.features(m, "q15")`): MicroPython cannot tell reliably whether
the chip has an FPU, so "auto" stays ulab, else pure. The spec is docs/features.md; the
accuracy of this backend is in its "q15 backend" section.

Per channel: ``source.read`` puts float32 samples into z (or, from a source with
``read_int16(ch, start, n, out)`` and ``scale``, a vwatch.ring.Ring, raw int16 samples: no
float at all); the kernels (vwatch.q15k) then work on int views of that same array:
1. the samples become integers v with |v| <= 2^18 (raw int16 times 8, or the float bits with
   one exponent for the window, which keeps int16 data exact); the mean is removed in integers;
2. d = v - mean is shifted to |dn| < 2^15 (statistics from dn, two-word sums), the periodic
   Hann window applied (|y| <= 2^14) and written as int16 over the first half of z;
3. an N/2-point complex radix-2 FFT with block floating point: a stage halves its outputs
   when the previous max |re| + |im| exceeds _GROW, else it may double them. So magnitudes
   stay <= 2 * 16370 + 1 after an unhalved stage and grow by < 1.5 per halved one (rounding):
   <= 32760 after 11 stages, inside int16, and |b w| < 2^30. Stages halved: T;
4. the split step gives |X[k] / 2|^2 (< 2^30) in the second half of z, summed per band in
   two words, converted to float once per band with the scaling of steps 1 to 3.
Then B logarithms and the statistics per channel, and the d^2/2 Mahalanobis step: the
float work is per feature, not per sample.
Costs: 4N bytes for z, N/2 for a quarter-wave Q15 sine table, 8B for the band sums, 8d for the
feature vector and f - mu. The kernels allocate nothing; log and score box a few floats.
"""

import math
from array import array

from micropython import const

_GROW = const(16370)  # max |re| + |im| below which a stage may skip its halving


class Features:
    name = "q15"

    def __init__(self, model):
        n = model.window
        self.model = model
        self.n = n
        self.z = array("f", range(n))  # float samples, then int16 spectrum + int32 powers
        q = n // 4
        self.tw = array("H", range(q + 1))  # round(2^15 sin(2 pi k / N)), k = 0 .. N/4
        for k in range(q + 1):
            self.tw[k] = int(math.floor(32768 * math.sin(2 * math.pi * k / n) + 0.5))
        self.acc = array("i", range(2 * model.bands))
        self.f = array("f", range(model.d))
        self.v = array("f", range(model.d))
        from . import q15k, vec  # compiled after the buffers exist, into the heap that is left

        self.vec = vec

        self.k = q15k
        self.pr = array("i", range(q15k.SIZE))
        self.pr[q15k.N] = n
        self.pr[q15k.NB] = model.bands
        self.pr[q15k.STATS] = model.stats
        self.norm = 64.0 / (3.0 * n * n)  # P = |X/2|^2 * 4 * 16 / (3 N^2) before the shifts
        self.shifts = 0  # FFT stages halved, last channel (for tests)
        self.src = None  # the last source, and whether it has read_int16
        self.ints = False

    def __repr__(self):
        return "<Features q15 N=%d d=%d>" % (self.n, len(self.f))

    def _spectrum(self):
        # Steps 2 to 4 on the centred int32 values in z; returns stages halved.
        k = self.k
        z = self.z
        pr = self.pr
        n = self.n
        k.window(z, z, self.tw, pr)
        k.bitrev(z, n >> 1)
        tw = self.tw
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
        k.bands(z, self.model.edges, self.acc, pr)
        return t

    def compute(self, source, start):
        """Fill self.f with the features of the window starting at frame ``start``."""
        m = self.model
        n = self.n
        z = self.z
        f = self.f
        pr = self.pr
        acc = self.acc
        k = self.k
        eps = m.eps
        stats = m.stats
        nb = m.bands
        pos = 0
        if source is not self.src:  # once per source: getattr would allocate every window
            self.src = source
            self.ints = hasattr(source, "read_int16")
        for ch in range(m.channels):
            top = 0
            if self.ints:  # raw int16 (a ring): v = raw * 8, x = v * scale / 8
                source.read_int16(ch, start, n, z)
                k.iconv(z, z, n, pr)
                u1 = source.scale / 8
                emax = 1
            else:  # floats: v = x * 2^(144 - emax), one exponent for the window
                source.read(ch, start, n, z)
                emax = k.fexp(z, n)
                if emax:
                    k.fconv(z, n, emax, pr)
                    u1 = 2.0 ** (emax - 144)
            if emax:
                s = pr[k.SUM]
                mean = (2 * s + n) // (2 * n)  # rounded; |mean| <= 2^18
                pr[k.MEAN] = mean + 0x40000
                top = k.center(z, n, pr)
            if top == 0:  # silence or DC: every band and moment is exactly 0
                for b in range(nb):
                    f[pos + b] = math.log(eps)
                pos += nb
                e = 0
                s2 = s4 = peak = 0.0
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
                sc = self.norm * 2.0 ** (2 * (t + e + 1)) * u1 * u1
                for b in range(nb):
                    f[pos + b] = math.log((acc[2 * b] * 32768.0 + acc[2 * b + 1]) * sc + eps)
                pos += nb
                if stats:
                    u = 2.0 ** (2 * e) * u1 * u1
                    s2 = (pr[k.S2HI] * 32768.0 + pr[k.S2LO]) * u
                    v = 2.0 ** 15 * u  # q = dn^2 / 2^15: q^2 2^30 u^2, in two halves
                    s4 = (pr[k.S4HI] * 32768.0 + pr[k.S4LO]) * v * v
                    peak = pr[k.PEAK] * u
            if stats:
                pos = self.vec.stat_features(f, pos, s2, s4, peak, n, eps, stats)
        return f

    def score(self):
        """Squared Mahalanobis distance ||L^T (f - mu)||^2 of the last computed window."""
        m = self.model
        return self.vec.mahal(m.lp, self.f, m.mu, self.v, m.d)
