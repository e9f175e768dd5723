"""Feature backend in plain MicroPython: `array` + `math`, for firmware without ulab.

    from vwatch import backend_pure
    fe = backend_pure.Features(model)     # allocates every buffer now
    fe.compute(source, start)        # fe.f: the window's features (array('f'), d values)
    s = fe.score()                   # squared Mahalanobis distance of fe.f (either model form)

``source`` has ``read(channel, start, n, out)`` (vwatch.wav.Wav, a ring buffer). The spec is
docs/features.md. The window is real, so its N-point FFT is one N/2-point complex FFT of the
even samples (real parts) and odd samples (imaginary parts), stored interleaved in the very
array the samples arrive in, followed by a split step: half the memory and time of a complex
N-point FFT.
Costs: 4N bytes for the window, N bytes for a quarter-wave sine table (tw[k] = sin(2 pi k/N),
k = 0..N/4; the other sines and cosines are its mirror images, and the periodic Hann window is
0.5 - 0.5 cos, so it needs no table of its own), 8d for the feature vector and f - mu.
Per window and channel about 2.5 N log2 N flops, then d^2/2 multiply-adds for the score
(d(p + 2) for a model with p PCA components). The only heap use
per window is short-lived boxed floats: MicroPython boxes every float result on most ports
(not with MICROPY_OBJ_REPR_C), so each flop leaves one small block for the GC.
The kernels live in vwatch.pure_kernels, compiled only after the buffers here are allocated.
"""

import math
from array import array


class Features:
    name = "pure"
    peak = -1  # no max |raw sample| of its own: the runtime asks the ring (q15: its own)

    def __init__(self, model):
        n = model.window
        self.model = model
        self.n = n
        self.z = array("f", range(n))  # samples, then the interleaved half-length spectrum
        self.tw = array("f", range(n // 4 + 1))
        for k in range(n // 4 + 1):
            self.tw[k] = math.sin(2 * math.pi * k / n)
        self.f = array("f", range(model.d))
        self.v = array("f", range(model.d))
        self.scale = 16.0 / (3.0 * n * n)
        self.low = None  # the zoom block's low ring (vwatch.zoom), fed by the caller
        if model.zoom_r:
            from .zoom import Low
            from .pure_zoom import Zoom

            self.low = Low(model, scratch=self.z)
            self.zp = Zoom(model, self)
        from . import pure_kernels, float_score  # compiled after the buffers, into the heap left

        self.kernels = pure_kernels
        self.scoring = float_score

    def __repr__(self):
        return "<Features pure N=%d d=%d>" % (self.n, len(self.f))

    def compute(self, source, start):
        """Fill self.f with the features of the window starting at frame ``start``."""
        m = self.model
        n = self.n
        z = self.z
        tw = self.tw
        f = self.f
        eps = m.eps
        stats = m.stats
        nb = m.bands
        dsp = self.kernels
        pos = 0
        for ch in range(m.channels):
            source.read(ch, start, n, z)
            s2, s4, peak = dsp.prepare(z, tw, n, stats)
            dsp.reverse(z, n >> 1)
            dsp.fft(z, tw, n)
            dsp.power(z, tw, n)
            dsp.bands(z, m.edges, nb, n, f, pos, self.scale, eps)
            pos += nb
            if stats:
                pos = self.scoring.stat_features(f, pos, s2, s4, peak, n, eps, stats)
        if self.low is not None:
            self.zp.compute(self, pos)
        return f

    def score(self):
        """Squared Mahalanobis distance (f - mu)^T P (f - mu) of the last computed window."""
        return self.scoring.score(self.model, self.f, self.v)
