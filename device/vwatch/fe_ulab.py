"""Feature backend on ulab (numpy for MicroPython): the FFT and the sums run in C.

    from vwatch import fe_ulab
    fe = fe_ulab.Features(model)     # allocates every buffer now; needs firmware with ulab
    fe.compute(source, start)        # fe.f: the window's features (array('f'), d values)
    s = fe.score()                   # squared Mahalanobis distance of fe.f (either model form)
    fe.fft                           # 'spectrogram' (in place) or 'fft' (older ulab)

Same results and interface as fe_pure (docs/features.md). The window lives in the upper half
of the 2N-float scratchpad of ``ulab.utils.spectrogram(x, scratchpad=, out=)``, whose input
loop reads x[i] before it writes there, and |X| comes out in the lower half: with both
arguments given it allocates nothing. ulab's spectrogram is the unscaled magnitude, so the
window's mean removal and Hann window are applied before it and the squaring and 16/(3N^2)
after. Without a usable spectrogram, ``np.fft.fft`` is used (a complex array, or a (re, im)
tuple on older ulab); it allocates 2N floats per channel.
Costs (float = 4 bytes on float32 builds as on boards, 8 on float64 builds such as the unix
port): 3N floats (scratchpad, Hann window) and a view per band. The score uses np.dot on
views of the model's own mu and packed L on float32 builds (zero copy; about 640 bytes of views
per feature and window), or, for a model with p PCA components, on views of w, A (p x d) and
g (three dots: about 1.5 KB a window at d = 45, p = 8, and 6 us against 96 us for the pure
loop on the unix port); on float64 builds a copy would double the arrays, so there it runs the
pure backend's loops (vwatch.vec.score) on the model's float32 arrays instead. Per window the
rest costs a few hundred bytes per channel (tests/test_device.py prints measured numbers).
"""

import math
from array import array

from ulab import numpy as np


class Features:
    name = "ulab"

    def __init__(self, model, fft=None):
        n = model.window
        self.model = model
        self.n = n
        self.sp = np.zeros(2 * n)  # scratchpad; the window is its upper half
        self.x = self.sp[n:]
        self.lo = self.sp[:n]  # |X|, then |X|^2
        self.hann = np.zeros(n)
        for i in range(n):
            self.hann[i] = 0.5 - 0.5 * math.cos(2 * math.pi * i / n)
        self.f32 = self.sp.itemsize == 4
        self.f = array("f", range(model.d))
        self.fv = np.frombuffer(self.f, dtype=np.float) if self.f32 else None
        self.lp = self.w = self.a = self.g = None
        self.comps = None  # per component (operating mode): views (mu, lp, w, a, g)
        if self.f32:  # the score runs on np.dot over views of the model's own arrays
            self.v = np.zeros(model.d)
            self.comps = []  # views of each component's arrays: no copy
            view = np.frombuffer
            for mu, lp, w, a, g in model.comps:
                if model.p:
                    a = view(a, dtype=np.float).reshape((model.p, model.d))
                    self.comps.append((view(mu, dtype=np.float), None, view(w, dtype=np.float),
                                       a, view(g, dtype=np.float)))
                else:
                    self.comps.append((view(mu, dtype=np.float), view(lp, dtype=np.float),
                                       None, None, None))
            self.mu, self.lp, self.w, self.a, self.g = self.comps[0]
        else:  # a float64 copy of L would double its size: score with the pure kernels
            self.v = array("f", range(model.d))
            self.mu = None
        e = model.edges
        self.views = [self.lo[e[b] : e[b + 1]] for b in range(model.bands)]
        self.scale = 16.0 / (3.0 * n * n)
        # Raw interleaved samples of a few frames, converted in C (see ulab_k.fill). Each
        # chunk costs about 900 bytes of views, so bigger is better where the heap allows.
        raw = 256 if self.f32 else 128
        self.raw = memoryview(bytearray(4 * raw))
        self.raw16 = self.raw[: 2 * raw]  # int16 samples
        self.cbuf = np.zeros(raw)  # their floats
        self.fbuf = np.frombuffer(self.raw, dtype=np.float) if self.f32 else None
        self.low = None  # the zoom block (vwatch.zoom, zoom_ulab), fed by the caller
        if model.zoom_r:
            from .zoom_ulab import Zoom

            self.zu = Zoom(model, self.f32)  # its spectrum's buffers, then the low ring
            self.low = self.zu.low
        from . import ulab_k  # compiled after the buffers exist, into the heap that is left

        self.k = ulab_k
        if not self.f32:
            from . import vec

            self.vec = vec
        self.fft = fft or ulab_k.pick_fft(self)

    def __repr__(self):
        return "<Features ulab N=%d d=%d fft=%s>" % (self.n, len(self.f), self.fft)

    def compute(self, source, start):
        """Fill self.f with the features of the window starting at frame ``start``."""
        f = self.k.compute(self, source, start)
        if self.low is not None:  # the zoom bands follow the others
            self.zu.compute(self, len(f) - self.model.channels * self.model.zoom_bands)
        return f

    def score(self):
        """Squared Mahalanobis distance ||L^T (f - mu)||^2 of the last computed window (NaN
        when it held NaN or infinite samples)."""
        s = self.k.score(self)
        if s != s or s * 0.0 != 0.0:
            self._clear()
        return s

    def _clear(self):
        # NaN stays in buffers that are reset by scaling with 0.0 (NaN * 0 is NaN): zero them
        # after a window that held one, so the next window starts clean.
        self.sp[:] = 0.0
        v = self.v
        for i in range(len(v)):
            v[i] = 0.0

