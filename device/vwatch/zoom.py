"""The zoom block on the board (docs/features.md, "Zoom block"): per channel, the samples
decimated by R (block averages) into a low ring of N_z values, and each window's bands of
their N_z-point spectrum, with bins of fs / (R N_z): 1x and 2x a slow shaft's frequency.

    low = fe.low                      # a backend's Low, when its model has a zoom block
    low.feed(source, lo, hi)          # frames [lo, hi) of the source, in order, R | lo, hi
    low.ready()                       # N_z blocks stored: the window has its zoom block
    fe.compute(source, start)         # the backend adds the zoom bands after the others

The runtime feeds the frames each window adds (the ring: the last hop of it); score_file
feeds the R N_z frames before a window's end. Blocks are never split: R divides N and H.
Costs: 4 C N_z bytes for the low ring, 4 * 128 for a scratch of frames, then per backend
the spectrum's buffers (pure: 5 N_z bytes; q15: 4.5 N_z + 12 B_z + 112; ulab: 3 N_z
floats). Per window: R H / R = H additions per channel to decimate, one N_z-point FFT.
q15: integer block sums (|S| <= R 2^15), never a float; pure: float averages.
"""

from array import array

import micropython
from micropython import const

_SOFF = const(0x200000)  # 2^21: an int block sum S is stored as S + _SOFF >= 0 (ptr32 rule)
_OFF = const(0x40000)  # vwatch.q15k's offset of v


@micropython.native
def _means(src, cnt, r, low, base, pos, nz, inv):
    # low[base + (pos + j) % nz] = mean of src[j r .. j r + r - 1], j < cnt / r
    i = 0
    while i < cnt:
        s = 0.0
        for k in range(i, i + r):
            s += src[k]
        low[base + pos] = s * inv
        pos += 1
        if pos == nz:
            pos = 0
        i += r


@micropython.viper
def _sums(src: ptr16, low: ptr32, cr: int, at: int):
    # Integer block sums of raw int16 samples: low[base + (pos + j) % nz] = S + _SOFF, with
    # cr = cnt | r << 8 | pos << 16 and at = base | nz << 16 (viper takes 4 arguments).
    cnt = cr & 0xFF
    r = (cr >> 8) & 0xFF
    pos = cr >> 16
    base = at & 0xFFFF
    nz = at >> 16
    i = 0
    while i < cnt:
        s = 0
        for k in range(i, i + r):
            s += (int(src[k]) ^ 0x8000) - 0x8000
        low[base + pos] = s + _SOFF
        pos += 1
        if pos == nz:
            pos = 0
        i += r


@micropython.viper
def _copy(src: ptr32, dst: ptr32, at: int, first: int):
    # dst[j] = src[base + (first + j) % nz], j < nz: a channel's blocks, oldest first.
    base = at & 0xFFFF
    nz = at >> 16
    i = first
    for j in range(nz):
        dst[j] = src[base + i]
        i += 1
        if i == nz:
            i = 0


@micropython.viper
def sconv(z: ptr32, low: ptr32, at: int, pr: ptr32):
    # Block sums S (oldest first from slot ``first``) -> v = S 8 / R (|v| <= 2^18) as v + _OFF
    # in z, like q15k.iconv does for raw samples (v = raw 8): the same units u1 = scale / 8.
    # at = ch | first << 3 | (log2 R - 3 + 8) << 16; pr[0] (q15k.N) = N_z.
    nz = pr[0]
    base = (at & 7) * nz
    i = (at >> 3) & 0x1FFF
    sh = (at >> 16) - 8
    half = 0
    if sh > 0:
        half = 1 << (sh - 1)
    acc = 0
    for j in range(nz):
        s = low[base + i] - _SOFF
        if sh > 0:
            v = (s + half) >> sh
        else:
            v = s << (0 - sh)
        acc += v
        z[j] = v + _OFF
        i += 1
        if i == nz:
            i = 0
    pr[1] = acc  # q15k.SUM, MEAN
    pr[2] = ((acc + (nz >> 1)) >> pr[15]) + _OFF


_SCRATCH = const(128)  # frames per read while feeding (a multiple of R: R is a power of two)


class Low:
    """The low ring: C channels of N_z decimated values, one write position for all."""

    def __init__(self, channels, factor, nz, ints=False):
        self.channels = channels
        self.r = factor
        self.nz = nz
        self.buf = array("f", range(channels * nz))  # floats, or int sums + _SOFF (q15)
        k = _SCRATCH if factor <= _SCRATCH else factor
        self.k = k
        self.scratch = array("f", range(k))  # k floats, or 2k int16 (q15 reads k of them)
        self.can_int = ints  # q15: integer sums when the source has read_int16
        self.ints = None  # decided by the first source fed
        self.inv = 1.0 / factor
        self.reset()

    def __repr__(self):
        return "<Low %d ch, R=%d N_z=%d: %d stored>" % (self.channels, self.r, self.nz,
                                                         self.count)

    def reset(self):
        self.pos = 0  # slot of the next block (the oldest once the ring is full)
        self.count = 0  # blocks stored, up to nz

    def ready(self):
        return self.count >= self.nz

    def feed(self, source, lo, hi):
        """Decimate frames [lo, hi) of every channel of ``source`` (read(ch, start, n, out),
        or read_int16 for integer sums) into the ring."""
        if self.ints is None:
            self.ints = self.can_int and hasattr(source, "read_int16")
        r = self.r
        nz = self.nz
        k = self.k
        sc = self.scratch
        blocks = (hi - lo) // r
        for ch in range(self.channels):
            base = ch * nz
            pos = self.pos
            at = lo
            while at < hi:
                cnt = hi - at if hi - at < k else k
                if self.ints:
                    source.read_int16(ch, at, cnt, sc)
                    _sums(sc, self.buf, cnt | r << 8 | pos << 16, base | nz << 16)
                else:
                    source.read(ch, at, cnt, sc)
                    _means(sc, cnt, r, self.buf, base, pos, nz, self.inv)
                pos = (pos + cnt // r) % nz
                at += cnt
        self.pos = (self.pos + blocks) % nz
        self.count = min(nz, self.count + blocks)

    def first(self):
        """Slot of the oldest block (the ring is full)."""
        return self.pos

    def copy(self, ch, out):
        """out[0..N_z) = channel ``ch``'s blocks, oldest first, as stored (float or int)."""
        _copy(self.buf, out, ch * self.nz | self.nz << 16, self.pos)


class PureZoom:
    """The zoom bands with the pure backend's kernels (vwatch.dsp) on an N_z-float buffer."""

    def __init__(self, m, low):
        import math

        nz = m.zoom_window
        self.low = low
        self.nz = nz
        self.z = array("f", range(nz))
        self.tw = array("f", range(nz // 4 + 1))
        for k in range(nz // 4 + 1):
            self.tw[k] = math.sin(2 * math.pi * k / nz)
        self.scale = 16.0 / (3.0 * nz * nz)

    def compute(self, fe, pos):
        """fe.f[pos ...] = the zoom bands of every channel (the low ring is ready)."""
        m = fe.model
        dsp = fe.dsp
        z = self.z
        tw = self.tw
        nz = self.nz
        nb = m.zoom_bands
        for ch in range(m.channels):
            self.low.copy(ch, z)
            dsp.prepare(z, tw, nz, 0)
            dsp.reverse(z, nz >> 1)
            dsp.fft(z, tw, nz)
            dsp.power(z, tw, nz)
            dsp.bands(z, m.zoom_edges, nb, nz, fe.f, pos, self.scale, m.eps)
            pos += nb


class Q15Zoom:
    """The zoom bands in fixed point with vwatch.q15k / q15s, on buffers of their own: integer
    block sums from a ring (no float, nothing allocated), float averages from a recording."""

    def __init__(self, m, fe):
        import math

        k = fe.k
        k2 = fe.k2
        nz = m.zoom_window
        self.nz = nz
        self.z = array("f", range(nz))
        q = nz // 4
        self.tw = array("H", range(q + 1))
        for i in range(q + 1):
            self.tw[i] = int(math.floor(32768 * math.sin(2 * math.pi * i / nz) + 0.5))
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

    def compute(self, fe, low):
        """fe.fq[...] = the zoom bands of every channel, Q16 (fe.compute then makes floats)."""
        k = fe.k
        k2 = fe.k2
        z = self.z
        pr = self.pr
        acc = self.acc
        nz = self.nz
        nb = pr[k.NB]
        pr[k2.CU] = fe.pr[k2.CU]
        for ch in range(low.channels):
            top = 0
            if low.ints:  # integer sums from a ring
                sconv(z, low.buf, ch | low.pos << 3 | self.sh, pr)
                emax = 1
                pr[k2.KU] = fe.ku + 0x2000000
            else:  # float averages: one exponent for the block, as fe_q15 does
                low.copy(ch, z)
                emax = k.fexp(z, nz)
                if emax:
                    k.fconv(z, nz, emax, pr)
                    pr[k2.KU] = 2 * (emax - 144) + 0x2000000
            if emax:
                top = k.center(z, nz, pr)
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
                t = fe.spectrum(z, self.tw, pr, nz, fe.model.zoom_edges, acc)
                pr[k2.E] = e + 0x2000000
                pr[k2.T] = t
            pr[k2.POS] = self.pos0 + ch * nb
            k2.logs(acc, nb, self.lnv, fe.lt)
            k2.chan(self.lnv, pr, fe.st, fe.fq)
