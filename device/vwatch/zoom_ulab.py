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
        # the periodic Hann window in three ulab calls (a store per element into an ndarray
        # leaves about 480 bytes of garbage each: a fragmented heap at start-up)
        self.hann = h = np.linspace(0, 2 * math.pi, nz, endpoint=False)
        np.cos(h, out=h)
        h *= -0.5
        h += 0.5
        # frames in (the low ring's scratch), and on float64 builds a channel's blocks out
        self.buf = array("f", range(128 if f32 else nz))
        self.f32 = f32
        # float32 builds: views of the low ring's arrays, copied oldest first with slices
        self.rv = None
        self.low = None
        self.lo16 = self.hi16 = None
        self.spectrogram = False
        if utils is not None and hasattr(utils, "spectrogram"):
            try:
                utils.spectrogram(self.x, scratchpad=self.sp, out=self.lo)
                self.spectrogram = True
            except TypeError:  # ulab before scratchpad= and out=
                pass
        # The low ring last: small arrays after the big ones fit a fragmented heap best.
        from .zoom import Low

        # integer block sums from a ring (no float per sample), float averages otherwise
        self.low = Low(m, True, self.buf)
        if f32:
            self.rv = [np.frombuffer(b, dtype=np.float) for b in self.low.bufs]
        # a sum's low and high 16 bits (little-endian): ulab has no int32, so S + 2^21 is
        # rebuilt in floats as hi 65536 + lo, exact in float32 (< 2^22)
        u16 = [np.frombuffer(b, dtype=np.uint16) for b in self.low.bufs]
        self.lo16 = [u[0::2] for u in u16]
        self.hi16 = [u[1::2] for u in u16]
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
        low = self.low
        for ch in range(m.channels):
            if low.ints:
                _rotate(x, self.hi16[ch], low.pos, nz)
                x *= 65536.0
                _rotate(x, self.lo16[ch], low.pos, nz, True)
                x -= 2097152.0  # zoom._SOFF
                x *= low.scale / low.r
            elif self.f32:
                _rotate(x, self.rv[ch], low.pos, nz)  # from the oldest block's slot
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


def _rotate(x, ring, old, nz, add=False):
    # x = ring oldest first (slot ``old`` first), or x += that (in place: a slice assignment
    # would copy its right-hand side first, garbage that fragments a small heap)
    if not add:
        x *= 0.0
    head = x[: nz - old]
    head += ring[old:]
    if old:
        tail = x[nz - old :]
        tail += ring[:old]
