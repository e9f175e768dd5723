"""The zoom block's low ring on the board (docs/features.md, "Zoom block"): per channel, the
samples decimated by R (block averages) into N_z values, whose N_z-point spectrum has bins of
fs / (R N_z): 1x and 2x a slow shaft's frequency. The bands are the backends' (pure_zoom,
q15_zoom, ulab_zoom: each loads only its own code).

    low = fe.low                      # a backend's Low, when its model has a zoom block
    low.feed(source, lo, hi)          # frames [lo, hi) of the source, in order, R | lo, hi
    low.ready()                       # N_z blocks stored: the window has its zoom block
    fe.compute(source, start)         # the backend adds the zoom bands after the others

The runtime feeds the frames each window adds (the ring: the last hop of it); score_file
feeds the R N_z frames before a window's end. Blocks are never split: R divides N and H.
Costs: 4 C N_z bytes for the low ring (pure and q15 read frames through their window
buffer; ulab has a 512-byte scratch), then per backend the spectrum's buffers (pure: 5 N_z
bytes, 4 N_z of them shared with the window when N_z <= N; q15: 4.5 N_z + 12 B_z + 112,
likewise; ulab: 4 N_z floats). Per window: H additions per channel to decimate, one
N_z-point FFT.
From a ring, q15 and ulab keep integer block sums (|S| <= R 2^15): no float per sample, no
heap; pure (and every backend reading a recording) keeps float averages.
"""

from array import array

import micropython
from micropython import const

_SOFF = const(0x200000)  # 2^21: an int block sum S is stored as S + _SOFF >= 0 (ptr32 rule)


@micropython.native
def _means(src, cnt, r, low, pos, nz, inv):
    # low[(pos + j) % nz] = mean of src[j r .. j r + r - 1], j < cnt / r
    i = 0
    while i < cnt:
        s = 0.0
        for k in range(i, i + r):
            s += src[k]
        low[pos] = s * inv
        pos += 1
        if pos == nz:
            pos = 0
        i += r


@micropython.viper
def sums(src: ptr16, low: ptr32, p: ptr32):
    # Integer block sums straight out of a ring's interleaved int16 frames (no copy of the
    # channel first: that read cost as much as the sums): low[slot] = S + _SOFF per block of
    # R frames, the slot going round N_z. p = [index of the first sample, its step (the
    # channels), len(buf) (where the ring wraps), frames (a multiple of R), R, slot, N_z].
    i = p[0]
    step = p[1]
    top = p[2]
    left = p[3]
    r = p[4]
    pos = p[5]
    nz = p[6]
    while left > 0:
        # each sample as v + 2^15 (its 16 bits, whichever way the port extends a ptr16 load,
        # with the sign bit flipped), R 2^15 taken off once a block
        s = 0
        e = i + r * step
        if e <= top:
            while i < e:
                s += (src[i] & 0xFFFF) ^ 0x8000
                i += step
            if i == top:
                i = 0
        else:  # the block wraps round the ring's end
            k = r
            while k > 0:
                s += (src[i] & 0xFFFF) ^ 0x8000
                i += step
                if i >= top:
                    i -= top
                k -= 1
        low[pos] = s - (r << 15) + _SOFF
        pos += 1
        if pos == nz:
            pos = 0
        left -= r


@micropython.viper
def _copy(src: ptr32, dst: ptr32, nz: int, first: int):
    # dst[j] = src[(first + j) % nz], j < nz: a channel's blocks, oldest first.
    i = first
    for j in range(nz):
        dst[j] = src[i]
        i += 1
        if i == nz:
            i = 0


_SCRATCH = const(128)  # frames per read while feeding (a multiple of R: R is a power of two)


class Low:
    """The low ring: C channels of N_z decimated values, one write position for all."""

    def __init__(self, m, ints=False, scratch=None):
        channels = m.channels
        factor = m.zoom_r
        nz = m.zoom_window
        if m.hop > m.window:  # duty cycling would throw away samples the history needs
            from .zoom_need import refuse_hop

            refuse_hop(m)
        span = factor * nz
        self.span = span
        # windows before a full zoom history do not exist (docs/features.md)
        self.first = (span - m.window + m.hop - 1) // m.hop if span > m.window else 0
        self.new = m.window - m.hop  # frames of a window the previous one did not have
        self.n = m.window
        self.channels = channels
        self.r = factor
        self.nz = nz
        # One array per channel, floats or int sums + _SOFF (q15): C blocks of 4 N_z bytes fit a
        # fragmented heap more easily than one of 4 C N_z.
        self.bufs = [array("f", range(nz)) for _ in range(channels)]
        # Frames are read through a float array: the backend's window buffer when it lends
        # it (free while the low ring is fed, before the window's features), else our own.
        if scratch is None:
            scratch = array("f", range(_SCRATCH if factor <= _SCRATCH else factor))
        self.scratch = scratch
        self.k = len(scratch) - len(scratch) % factor  # frames per read: a multiple of R
        self.can_int = ints  # integer sums when the source is a Ring (q15, ulab)
        self.args = array("i", range(7))  # sums()'s arguments (viper takes four)
        self.ints = None  # decided by the first source fed
        # units per raw count, set by the first feed; made here, as every attribute, so that
        # none is added in the first window (the instance's dict grew then: 184 bytes at the
        # heap's tightest moment)
        self.scale = 1.0
        self.inv = 1.0 / factor
        self.reset()

    def __repr__(self):
        return "<Low %d ch, R=%d N_z=%d: %d stored>" % (self.channels, self.r, self.nz,
                                                         self.count)

    def reset(self):
        self.pos = 0  # slot of the next block (the oldest once the ring is full)
        self.count = 0  # blocks stored, up to nz
        self.fed = 0  # score_file: frames of the recording decimated so far

    def ready(self):
        return self.count >= self.nz

    def window(self, ring, seq):
        """The runtime, once per window: feed the frames window ``seq`` of the ring adds;
        True when the window has its zoom block."""
        self.feed(ring, self.new if seq else 0, self.n)
        return self.count >= self.nz

    def upto(self, source, end):
        """score_file: feed a recording's frames up to ``end`` (at most the last R N_z)."""
        self.feed(source, max(self.fed, end - self.span), end)
        self.fed = end

    def feed(self, source, lo, hi):
        """Decimate frames [lo, hi) of every channel of ``source`` into the ring: a Ring's
        integer block sums read in place (sums), any other source's float averages through
        read(ch, start, n, out)."""
        if self.ints is None:
            self.ints = self.can_int and hasattr(source, "at") and hasattr(source, "buf")
            self.scale = getattr(source, "scale", 1.0)  # units per raw count (a ring)
        r = self.r
        nz = self.nz
        k = self.k
        sc = self.scratch
        blocks = (hi - lo) // r
        if self.ints:  # a Ring: every block of a channel in one pass over its frames
            if hi > lo:
                p = self.args
                p[1] = source.channels
                p[2] = source.cap * source.channels
                p[3] = hi - lo
                p[4] = r
                p[5] = self.pos
                p[6] = nz
                for ch in range(self.channels):
                    p[0] = source.at(ch, lo)
                    sums(source.buf, self.bufs[ch], p)
        else:
            for ch in range(self.channels):
                buf = self.bufs[ch]
                pos = self.pos
                at = lo
                while at < hi:
                    cnt = hi - at if hi - at < k else k
                    source.read(ch, at, cnt, sc)
                    _means(sc, cnt, r, buf, pos, nz, self.inv)
                    pos = (pos + cnt // r) % nz
                    at += cnt
        self.pos = (self.pos + blocks) % nz
        self.count = min(nz, self.count + blocks)

    def copy(self, ch, out):
        """out[0..N_z) = channel ``ch``'s blocks, oldest first, as stored (float or int)."""
        _copy(self.bufs[ch], out, self.nz, self.pos)
