"""The zoom block's bands on ulab (docs/features.md, "Zoom block"), beside fe_ulab.

    zu = zoom_ulab.Zoom(model, f32)    # its buffers, then zu.low (a vwatch.zoom.Low)
    zu.low.feed(source, lo, hi)        # the caller feeds the low ring
    zu.compute(fe, pos)                # fe.f[pos ...] = the zoom bands of every channel

An additive piece for the ulab backend: its own 2 N_z-float scratchpad (spectrogram in place,
as fe_ulab does for the main window), Hann window and band views, and the N_z-float array
the low ring's blocks are copied into (a view of it on float32 builds; the low ring reads its
frames through it too). Costs 3 N_z ulab floats + 4 N_z bytes + a view per zoom band; per
window a few hundred bytes of temporaries.
"""

import math
from array import array

from ulab import numpy as np

try:
    from ulab import utils
except ImportError:
    utils = None


class Zoom:
    def __init__(self, m, f32):
        nz = m.zoom_window
        self.nz = nz
        self.sp = np.zeros(2 * nz)
        self.x = self.sp[nz:]
        self.lo = self.sp[:nz]
        self.hann = np.zeros(nz)
        for i in range(nz):
            self.hann[i] = 0.5 - 0.5 * math.cos(2 * math.pi * i / nz)
        # frames in (the low ring's scratch), and on float64 builds a channel's blocks out
        self.buf = array("f", range(128 if f32 else nz))
        self.f32 = f32
        # float32 builds: views of the low ring's arrays, copied oldest first with slices
        self.rv = None
        self.low = None
        self.spectrogram = False
        if utils is not None and hasattr(utils, "spectrogram"):
            try:
                utils.spectrogram(self.x, scratchpad=self.sp, out=self.lo)
                self.spectrogram = True
            except TypeError:  # ulab before scratchpad= and out=
                pass
        # The low ring last: small arrays after the big ones fit a fragmented heap best.
        from .zoom import Low

        self.low = Low(m.channels, m.zoom_r, nz, scratch=self.buf)
        if f32:
            self.rv = [np.frombuffer(b, dtype=np.float) for b in self.low.bufs]
        e = m.zoom_edges
        self.views = [self.lo[e[b] : e[b + 1]] for b in range(m.zoom_bands)]
        self.scale = 16.0 / (3.0 * nz * nz)

    def compute(self, fe, pos):
        """fe.f[pos ...] = ln(E_z[b] + eps) for every channel's zoom bands."""
        m = fe.model
        f = fe.f
        x = self.x
        nz = self.nz
        eps = m.eps
        scale = self.scale
        e = m.zoom_edges
        for ch in range(m.channels):
            if self.f32:
                ring = self.rv[ch]
                old = self.low.pos  # the oldest block's slot
                x[: nz - old] = ring[old:]
                if old:
                    x[nz - old :] = ring[:old]
            else:
                self.low.copy(ch, self.buf)
                buf = self.buf
                for i in range(nz):
                    x[i] = buf[i]
            x -= np.sum(x) / nz
            x *= self.hann
            p = None
            if self.spectrogram:
                utils.spectrogram(x, scratchpad=self.sp, out=self.lo)
                lo = self.lo
                lo *= lo
            else:
                c = np.fft.fft(x)
                if isinstance(c, tuple):  # older ulab: (re, im)
                    p = c[0] * c[0] + c[1] * c[1]
                else:
                    p = abs(c)
                    p *= p
            for b in range(m.zoom_bands):
                acc = np.sum(self.views[b]) if p is None else np.sum(p[e[b] : e[b + 1]])
                f[pos + b] = math.log(acc * scale + eps)
            pos += m.zoom_bands
