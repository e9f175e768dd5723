"""Feature backend on ulab (numpy for MicroPython): the FFT and the sums run in C.

    from vwatch import fe_ulab
    fe = fe_ulab.Features(model)     # allocates every buffer now; needs firmware with ulab
    fe.compute(source, start)        # fe.f: the window's features (array('f'), d values)
    s = fe.score()                   # squared Mahalanobis distance of fe.f (either model form;
                                     # with K operating modes the smallest of the K)
    fe.form                          # how it scores: 'blocked' L^T, 'packed' L, or 'pca'
    fe.fft                           # 'fft' (np.fft.fft) or 'spectrogram' (small heaps)

Same results and interface as fe_pure (docs/features.md). Per channel a window costs a fixed
handful of ulab calls: the ring's int16 frames of the channel (a strided view of the ring,
made per window) are added into the zeroed window buffer x; the mean is removed and the Hann
window applied in place; ``np.fft.fft(x)`` (measured the cheapest FFT on Cortex-M7 and M3:
2.5x and 1.2x faster than ``utils.spectrogram``) returns its complex result, read as
interleaved floats, squared and copied into the persistent power buffer, over which the band
views were made once (where the heap has no room for that result, fft='spectrogram': the
window in the upper half of its 2N-float scratchpad, no allocation); one ``np.sum`` per band
written into the array('f') of features (a store into an ndarray costs a view), then the
scale, the epsilon and the log for all bands of a channel (all channels at once without
statistics) in three calls. The sensor's units per count and 16/(3N^2) are folded into one
scale per window.
Costs (float = 4 bytes on float32 builds as on boards, 8 on float64 builds such as the unix
port): buffers of 2N + 2 floats (x and the power, Hann), a view per band (the kurtosis
statistic reads and converts the channel twice rather than keep x^2); per window the FFT's
own result (2N floats per channel, garbage at once), a view per channel and a boxed float per
band. The score: L^T in row blocks of 12 (ulab_k.blocked_lt: 11 % more floats than the packed
triangle, which it replaces), one ``np.dot`` per block (8 at d = 96, measured 6x faster than
one dot per row and faster than one dot of the dense d x d matrix) where the heap holds both
for a moment, else the packed loop (two views per feature and window); a PCA model in three
dots. Float64 builds score with the pure backend's loops on the model's float32 arrays (a
float64 copy of L would double its size).
"""

import math
from array import array

from ulab import numpy as np

from . import ulab_k  # before the buffers: its code must not land between them

_SPARE = 8192  # bytes left free beside the blocked L^T and an FFT result


class Features:
    name = "ulab"

    def __init__(self, model, fft=None):
        n = model.window
        d = model.d
        self.model = model
        self.n = n
        isz = np.zeros(1).itemsize
        self.f32 = isz == 4
        self.fft = fft or ulab_k.pick_fft(n, isz)
        if self.fft == "spectrogram":  # the window in the upper half of the scratchpad
            buf = np.zeros(2 * n)
            self.x = buf[n:]
            self.pw = buf[:n]  # |X_k|^2
            self.sp = buf
            k = 1
        else:  # the window (first N), then |X_k|^2 interleaved (re^2, im^2: N + 2)
            buf = np.zeros(n + 2)
            self.x = buf[:n]
            self.pw = buf
            k = 2
        # raw int16 samples go to the last 2N bytes of x: converted in place (ulab reads
        # sample i before it writes float i, and float i never reaches sample i + 1)
        top = n if k == 2 else 2 * n
        self.hi = memoryview(buf)[top - 2 * n // isz : top]
        self.hann = np.zeros(n)
        for i in range(n):
            self.hann[i] = 0.5 - 0.5 * math.cos(2 * math.pi * i / n)
        e = model.edges
        nb = model.bands
        self.views = [self.pw[k * e[b] : k * e[b + 1]] for b in range(nb)]
        self.f = array("f", range(d))
        self.fa = np.frombuffer(self.f, dtype=np.float) if self.f32 else np.zeros(d)
        per = nb + (model.stats & 1) + (model.stats >> 1 & 1) + (model.stats >> 2 & 1)
        if model.stats:  # the band features of each channel
            self.bv = [self.fa[c * per : c * per + nb] for c in range(model.channels)]
        else:  # every channel's bands; the zoom block's bands (zoom_ulab) follow them
            self.bv = [self.fa[: model.channels * nb]]
        self.buf = buf
        self.src = self.r16 = None  # the last source, and its int16 view (a Ring's)
        self.scale = 16.0 / (3.0 * n * n)
        self.zu = self.low = None  # the zoom block (vwatch.zoom, zoom_ulab), fed by the caller
        if model.zoom_r:
            from .zoom_ulab import Zoom

            self.zu = Zoom(model, self.f32)  # its spectrum's buffers, then the low ring
            self.low = self.zu.low
        self.form = "packed"
        self.lt = None
        self.comps = None  # per component (operating mode): views (mu, lp, w, a, g)
        if not self.f32:  # a float64 copy of L would double its size: the pure kernels
            from . import vec

            self.vec = vec
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
        # both forms at once for a moment; then the blocks cost 11 % more than the triangle
        if gc.mem_free() < ulab_k.blocked_bytes(d) + 2 * isz * n + _SPARE:
            return
        try:
            blocks = ulab_k.blocked_lt(self.comps[0][1], d)
        except MemoryError:  # the packed triangle then
            return
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
        f = ulab_k.compute(self, source, start)
        if self.zu is not None:  # the zoom bands follow the others
            self.zu.compute(self, len(f) - self.model.channels * self.model.zoom_bands)
        return f

    def score(self):
        """Squared Mahalanobis distance ||L^T (f - mu)||^2 of the last computed window (NaN
        when it held NaN or infinite samples; the smallest over K operating modes)."""
        s = ulab_k.score(self)
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
