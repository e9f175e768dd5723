"""Feature backend on ulab (numpy for MicroPython): the FFT and the sums run in C.

    from vwatch import backend_ulab
    fe = backend_ulab.Features(model)  # allocates every buffer now; needs firmware with ulab
    fe.compute(source, start)          # fe.f: the window's features (array('f'), d values)
    s = fe.score()                     # squared Mahalanobis distance of fe.f (either model form;
                                       # with K operating modes the smallest of the K)
    fe.form                            # how it scores: 'blocked' L^T, 'packed' L, or 'pca'
    fe.fft                             # 'fft' (np.fft.fft) or 'spectrogram' (small heaps)
    fe.pairs                           # ulab_pairs.bands when two channels share each FFT

Same results and interface as backend_pure (docs/features.md). Per channel a window costs a fixed
handful of ulab calls: the ring's int16 frames of the channel (a strided view of the ring,
made per window) are added into the zeroed window buffer x; the mean is removed and the Hann
window applied in place; ``np.fft.fft(x)`` (measured the cheapest FFT on Cortex-M7 and M3:
2.5x and 1.2x faster than ``utils.spectrogram``) returns its complex result. Where the heap
has room (see _room), two channels share one complex FFT (ulab_pairs: z = x1 + i x2 in a
2N-float buffer, the two power spectra split off by symmetry into the same buffer, over which
the band views were made once: half the FFTs and half their garbage); else one channel's
result is read as interleaved floats, squared and copied into the persistent power buffer
(where the heap has no room for that result, fft='spectrogram': the window in the upper half
of its 2N-float scratchpad, no allocation); one ``np.sum`` per band
written into the array('f') of features (a store into an ndarray costs a view), then the
scale, the epsilon and the log for all bands of a channel (all channels at once without
statistics) in three calls. The sensor's units per count and 16/(3N^2) are folded into one
scale per window.
Costs (float = 4 bytes on float32 builds as on boards, 8 on float64 builds such as the unix
port): buffers of N + 2 floats (x and the power; 2N with pairs or the spectrogram) and N
(Hann), a view per band (two with pairs; the kurtosis statistic reads and converts the
channel twice rather than keep x^2); per window the FFT's own result (2N floats per channel
or pair, garbage at once), a few views per channel and a boxed float per band.
The score: L^T in row blocks of 12 (ulab_kernels.blocked_lt: 11 % more floats than the packed
triangle, which it replaces), one ``np.dot`` per block (8 at d = 96, measured 6x faster than
one dot per row and faster than one dot of the dense d x d matrix) where the heap holds both
for a moment, else the packed loop (two views per feature and window); a PCA model in three
dots. Float64 builds score with the pure backend's loops on the model's float32 arrays (a
float64 copy of L would double its size).
"""

import math
import sys
from array import array

from ulab import numpy as np

from . import ulab_kernels  # before the buffers: its code must not land between them

# bytes left free beside the blocked L^T and two FFT results: twice on 64-bit words, where
# every view and boxed float of a window's garbage is twice as large
_SPARE = 32768 if sys.maxsize >> 32 else 16384


def _complex():
    # True when np.fft.fft returns a complex array (current ulab), not a (re, im) tuple
    return hasattr(np, "complex") and not isinstance(ulab_kernels.FFT(np.zeros(4)), tuple)


def _zoom_bytes(m, isz):
    # the zoom block's buffers (ulab_zoom and its low ring), allocated after the choices below
    return (4 * isz + 4 * m.channels) * m.zoom_window + 2048 if m.zoom_r else 0


def _room(m, isz):
    # Channel pairs where the heap has room for their larger buffer (N floats more) beside
    # two FFT results, the zoom block's buffers and a margin; else one channel per FFT in
    # the smaller buffer.
    import gc

    gc.collect()
    return gc.mem_free() > 8 * isz * m.window + 16384 + _zoom_bytes(m, isz)


class Features:
    name = "ulab"
    peak = -1  # no max |raw sample| of its own: the runtime asks the ring (q15: its own)

    def __init__(self, model, fft=None):
        n = model.window
        d = model.d
        self.model = model
        self.n = n
        isz = np.zeros(1).itemsize
        self.f32 = isz == 4
        self.fft = fft or ulab_kernels.pick_fft(n, isz, _zoom_bytes(model, isz))
        m = n // 2
        # One buffer reused by every step. np.fft.fft, one channel: N + 2 floats, the window
        # x (raw int16 samples at its top for a read_int16 source), then |X_k|^2 as (re^2,
        # im^2) pairs, k = 0..N/2. Channel pairs (two channels per complex FFT): 2N floats,
        # z = x1 + i x2 interleaved (zr, zi), then 4|X1_k|^2 and 4|X2_k|^2, one float per bin
        # k = 0..N/2 each. Spectrogram: 2N floats, the window in the upper half, |X_k| then
        # |X_k|^2 in the lower.
        pairs = self.fft == "fft" and model.channels > 1 and _complex() and _room(model, isz)
        self.pairs = None
        if pairs:  # before the buffers, as ulab_kernels
            from . import ulab_pairs

            self.pairs = ulab_pairs.bands
        buf = np.zeros(2 * n if pairs or self.fft == "spectrogram" else n + 2)
        self.sp = buf
        self.x = buf[n:] if self.fft == "spectrogram" else buf[:n]
        if self.fft == "spectrogram":
            self.spo = buf[:n]  # |X_k|, k = 0..N-1
            self.pw = buf[: m + 1]  # squared: |X_k|^2, k = 0..N/2
        self.zc = self.up = None
        if pairs:
            self.zc = np.frombuffer(buf, dtype=np.complex)
            self.zr = buf[0::2]
            self.zi = buf[1::2]
            self.lo = buf[1 : m + 1]  # bins 1..N/2 of 4|X1|^2 and of 4|X2|^2
            self.lo2 = buf[m + 2 : 2 * m + 2]
            self.tv = buf[2 * m + 2 : 3 * m + 2]  # scratch after them
            self.up = buf[n:]  # one channel's window (a source that is no Ring)
            self.upv = memoryview(buf)[n:]
        # raw int16 samples go to the last 2N bytes of x: converted in place (ulab reads
        # sample i before it writes float i, and float i never reaches sample i + 1)
        self.hi = memoryview(buf)[n - 2 * n // isz : n]
        # 0, the mean, the band scale and the log's epsilon as 1-element arrays: an in-place op
        # with a float allocates its conversion (144 bytes on i386, 160 on x86-64), in the
        # hole the next FFT result needs, and costs 800 instructions more on the M7
        self.z0 = np.zeros(1)
        self.m1 = np.zeros(1)
        self.m1v = memoryview(self.m1)
        self.sc = np.zeros(1)  # the window's band scale and the model's epsilon (which
        self.scv = memoryview(self.sc)  # vwatch.learn sets after start-up), stored per window
        self.epsa = np.zeros(1)
        self.epsv = memoryview(self.epsa)
        # the periodic Hann window in three ulab calls (a store per element into an ndarray
        # leaves about 480 bytes of garbage each: a fragmented heap at start-up)
        self.hann = h = np.linspace(0, 2 * math.pi, n, endpoint=False)
        np.cos(h, out=h)
        h *= -0.5
        h += 0.5
        e = model.edges
        nb = model.bands
        k = 2 if self.fft == "fft" and not pairs else 1  # (re^2, im^2) pairs or one per bin
        self.views = [buf[k * e[b] : k * e[b + 1]] for b in range(nb)]
        self.views2 = None
        self.dc = e[0] == 0  # bin 0 in a band (pairs: set apart, see ulab_pairs._pair)
        if self.dc:
            self.mv = memoryview(buf)
        if self.zc is not None:
            self.views2 = [buf[m + 1 + e[b] : m + 1 + e[b + 1]] for b in range(nb)]
        self.f = array("f", range(d))
        self.fa = np.frombuffer(self.f, dtype=np.float) if self.f32 else np.zeros(d)
        per = nb + (model.stats & 1) + (model.stats >> 1 & 1) + (model.stats >> 2 & 1)
        self.per = per
        if model.stats:  # the band features of each channel
            self.bv = [self.fa[c * per : c * per + nb] for c in range(model.channels)]
        else:  # every channel's bands; the zoom block's bands (ulab_zoom) follow them
            self.bv = [self.fa[: model.channels * nb]]
        self.buf = buf
        self.r16 = None  # during compute: the Ring's frames as an int16 array
        self.scale = 16.0 / (3.0 * n * n)
        self.zu = self.low = None  # the zoom block (vwatch.zoom, ulab_zoom), fed by the caller
        if model.zoom_r:
            from .ulab_zoom import Zoom

            self.zu = Zoom(model, self.f32, pairs)  # its spectrum's buffers, then the low ring
            self.low = self.zu.low
        self.form = "packed"
        self.lt = None
        self.comps = None  # per component (operating mode): views (mu, lp, w, a, g)
        if not self.f32:  # a float64 copy of L would double its size: the pure kernels
            from . import float_score

            self.float_scoring = float_score
            self.v = array("f", range(d))
            return
        self.v = np.zeros(d)
        view = np.frombuffer
        self.comps = []  # views of each component's own arrays: no copy
        for mu, lp, w, a, g in model.comps:
            if model.p:
                self.comps.append((view(mu, dtype=np.float), None, view(w, dtype=np.float),
                                   view(a, dtype=np.float).reshape((model.p, d)),
                                   view(g, dtype=np.float)))
            else:
                self.comps.append((view(mu, dtype=np.float), view(lp, dtype=np.float), None,
                                   None, None))
        if model.p:
            self.form = "pca"
            return
        # K blocked copies would not fit: the packed triangles. A template's packed triangle is
        # where vwatch.learn accumulates its co-moments and then the factor: scored as it is.
        if len(self.comps) > 1 or not model.n_train:
            return
        import gc

        gc.collect()
        # Room for two FFT results and a margin once the blocks have replaced the packed
        # triangle (with less, a fragmented heap failed a replay after 1,800 windows), and an
        # FFT result in one piece beside them: now, or where the triangle is once freed (one
        # piece of 2 d (d + 1) bytes). Else the packed triangle stays. (The triangle counted
        # as freed: the seed rig with a zoom block scores blocked on the 140 KB qemu board.)
        packed = 2 * d * (d + 1)
        if gc.mem_free() + packed < ulab_kernels.blocked_bytes(d) + 4 * isz * n + _SPARE:
            return
        try:
            blocks = ulab_kernels.blocked_lt(self.comps[0][1], d)
        except MemoryError:
            return
        room = 2 * isz * n + 4096
        if packed < room:
            try:
                probe = bytearray(room)
            except MemoryError:
                return
            probe = None
        # the row blocks of L^T and the views of v they multiply (made once)
        self.lt = [(b, self.v[r:]) for r, b in blocks]
        # the blocks replace the packed triangle
        model.lp = None
        model.comps = ((model.comps[0][0], None, None, None, None),)
        self.comps = [(self.comps[0][0], None, None, None, None)]  # type: ignore[list-item]
        self.form = "blocked"

    def __repr__(self):
        return "<Features ulab N=%d d=%d fft=%s score=%s>" % (self.n, len(self.f), self.fft,
                                                              self.form)

    def compute(self, source, start):
        """Fill self.f with the features of the window starting at frame ``start``."""
        f = ulab_kernels.compute(self, source, start)
        if self.zu is not None:  # the zoom bands follow the others
            self.zu.compute(self, len(f) - self.model.channels * self.model.zoom_bands)
        return f

    def score(self):
        """Squared Mahalanobis distance ||L^T (f - mu)||^2 of the last computed window (NaN
        when it held NaN or infinite samples; the smallest over K operating modes)."""
        s = ulab_kernels.score(self)
        if s != s or s * 0.0 != 0.0:
            self._clear()
        return s

    def _clear(self):
        # NaN stays in buffers that are reset by scaling with 0.0 (NaN * 0 is NaN): zero them
        # after a window that held one, so the next window starts clean.
        self.buf[:] = 0.0
        v = self.v
        for i in range(len(v)):
            v[i] = 0.0
