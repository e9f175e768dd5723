"""The zoom block's bands in fixed point (vwatch.q15_spectrum / q15_score on buffers of its own).

    zq = q15_zoom.Zoom(model, fe)     # fe: the q15 Features it belongs to (sets fe.low)
    zq.compute(fe, low)               # fe.fq[...] = the zoom bands in Q16, before fe's floats

From a ring the low ring holds integer block sums S = sum of R raw int16 samples
(vwatch.zoom.sums, as the samples arrive); sconv turns the N_z of a channel into
q15_spectrum's 18-bit values v = 8 S / R, the units of the main window's raw path, so nothing
else changes: no float, nothing allocated. From a recording (float samples) the low ring holds
float averages and takes q15_spectrum's float path. Costs 4 N_z bytes (values), N_z / 2 (sine
table), 12 B_z + 112 (sums, logs, parameters).
"""

import math
from array import array

import micropython
from micropython import const

from .backend_q15 import spectrum, tables

_SOFF = const(0x200000)  # 2^21: an int block sum S is stored as S + _SOFF >= 0 (ptr32 rule)
_V_OFFSET = const(0x40000)  # vwatch.q15_spectrum's offset of v


@micropython.viper
def sconv(z: ptr32, low: ptr32, at: int, pr: ptr32):
    # Block sums S (oldest first from slot ``first``) -> v = S 8 / R (|v| <= 2^18) as v + _V_OFFSET
    # in z, like q15_spectrum.iconv does for raw samples (v = raw 8): the same units u1 = scale/8.
    # at = first | (log2 R - 3 + 8) << 16; pr[0] (q15_spectrum.N) = N_z.
    nz = pr[0]
    i = at & 0xFFFF
    sh = (at >> 16) - 8
    half = 0
    if sh > 0:
        half = 1 << (sh - 1)
    acc = 0
    for j in range(nz):
        s = low[i] - _SOFF
        if sh > 0:
            v = (s + half) >> sh
        else:
            v = s << (0 - sh)
        acc += v
        z[j] = v + _V_OFFSET
        i += 1
        if i == nz:
            i = 0
    pr[1] = acc  # q15_spectrum.SUM, MEAN
    pr[2] = ((acc + (nz >> 1)) >> pr[15]) + _V_OFFSET


class Zoom:
    """The zoom bands in fixed point with vwatch.q15_spectrum / q15_score, on buffers of their
    own: integer block sums from a ring (no float, nothing allocated), float averages from a
    recording."""

    def __init__(self, m, fe):
        k = fe.kernels
        k2 = fe.scoring
        nz = m.zoom_window
        self.nz = nz
        # the window buffer is free once the main features are done: shared when it is long
        # enough (N_z <= N)
        self.z = fe.z if len(fe.z) >= nz else array("f", range(nz))
        self.tw, self.hann, self.swaps = tables(nz)
        nb = m.zoom_bands
        self.acc = array("i", range(2 * nb))  # band sums; no statistics on the zoom block
        self.lnv = array("i", range(nb))
        pr = self.pr = array("i", range(k2.SIZE))
        pr[k.N] = nz
        pr[k.NB] = nb
        pr[k.STATS] = 0
        l2n = 0
        while 1 << l2n < nz:
            l2n += 1
        pr[k.LOG2N] = l2n
        pr[k2.LNORM] = int(math.floor(math.log(64.0 / (3.0 * nz * nz)) * 65536 + 0.5)) + 0x2000000
        pr[k2.LE] = fe.pr[k2.LE]
        l2r = 0
        while 1 << l2r < m.zoom_r:
            l2r += 1
        self.sh = (l2r - 3 + 8) << 16  # sconv's shift: v = S 8 / R
        self.pos0 = m.channels * fe.per  # the zoom block follows the main features
        from .zoom import Low

        fe.low = Low(m, True, fe.z)  # integer sums, read through the window buffer

    def compute(self, fe, low):
        """fe.fq[...] = the zoom bands of every channel, Q16 (fe.compute then makes floats)."""
        k = fe.kernels
        k2 = fe.scoring
        z = self.z
        pr = self.pr
        acc = self.acc
        nz = self.nz
        nb = pr[k.NB]
        pr[k2.CU] = fe.pr[k2.CU]
        for ch in range(low.channels):
            top = 0
            if low.ints:  # integer sums from a ring
                sconv(z, low.bufs[ch], low.pos | self.sh, pr)
                top = k.center(z, nz, pr)
                emax = 1
                pr[k2.KU] = fe.ku + 0x2000000
            else:  # float averages: one exponent for the block, as backend_q15 does
                low.copy(ch, z)
                emax = k.fexp(z, nz)
                if emax:
                    top = k.fconv(z, nz, emax, pr)
                    pr[k2.KU] = 2 * (emax - 144) + 0x2000000
            if top == 0:
                for i in range(2 * nb):
                    acc[i] = 0
            else:
                e = 0
                while top >> e >= 32768:
                    e += 1
                while e <= 0 and top << -e < 16384:
                    e -= 1
                pr[k.RS] = e if e > 0 else 0
                pr[k.LS] = -e if e < 0 else 0
                t = spectrum(k, z, self, pr, nz, fe.model.zoom_edges, acc)
                pr[k2.E] = e + 0x2000000
                pr[k2.T] = t
            pr[k2.POS] = self.pos0 + ch * nb
            k2.logs(acc, nb, self.lnv, fe.lt)
            k2.chan(self.lnv, pr, fe.st, fe.fq)
