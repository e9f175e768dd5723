"""The zoom block's bands on ulab (docs/features.md, "Zoom block"), beside backend_ulab.

    zu = ulab_zoom.Zoom(model, f32)    # its buffers, then zu.low (a vwatch.zoom.Low)
    zu.low.feed(source, lo, hi)        # the caller feeds the low ring
    zu.compute(fe, pos)                # fe.f[pos ...] = the zoom bands of every channel

An additive piece for the ulab backend: its own 2 N_z-float scratchpad (the FFT's input, or
the spectrogram in place, as backend_ulab does for the main window), the Hann window and that
window turned to the low ring's oldest slot (each channel is windowed where its blocks are
stored, not copied round first: a circular shift changes only the spectrum's phases), band
views, and a 128-float scratch through which the low ring reads a recording's frames. Costs
4 N_z ulab floats + 512 bytes + a view per zoom band; per window an N_z-point FFT result per
channel pair and about 2.7 KB of views and boxed floats per pair (i386: seed+zoom 19 KB a
window beside the seed rig's own).
"""

import math
from array import array

from ulab import numpy as np

try:
    from ulab import utils
except ImportError:
    utils = None


class Zoom:
    def __init__(self, m, f32, pairs=False):
        nz = m.zoom_window
        self.nz = nz
        self.n = nz
        self.sp = sp = np.zeros(2 * nz)
        self.x = sp[nz:]
        self.lo = sp[:nz]
        # pairs (backend_ulab's choice): two channels per complex FFT as in ulab_pairs, the same
        # buffer read as z = x1 + i x2, then 4|X1_k|^2 and 4|X2_k|^2 (N_z/2 + 1 floats each)
        self.pairs = None
        mz = nz // 2
        e = m.zoom_edges
        if pairs and m.channels > 1:
            from . import ulab_pairs

            self.pairs = ulab_pairs.spectra
            self.zc = np.frombuffer(sp, dtype=np.complex)
            self.zr = sp[0::2]
            self.zi = sp[1::2]
            self.lo = sp[1 : mz + 1]
            self.lo2 = sp[mz + 2 : 2 * mz + 2]
            self.tv = sp[2 * mz + 2 : 3 * mz + 2]
            self.dc = e[0] == 0
            self.mv = memoryview(sp)
            self.pviews = [sp[e[b] : e[b + 1]] for b in range(m.zoom_bands)]
            self.pviews2 = [sp[mz + 1 + e[b] : mz + 1 + e[b + 1]] for b in range(m.zoom_bands)]
        # the periodic Hann window in three ulab calls (a store per element into an ndarray
        # leaves about 480 bytes of garbage each: a fragmented heap at start-up)
        self.hann = h = np.linspace(0, 2 * math.pi, nz, endpoint=False)
        np.cos(h, out=h)
        h *= -0.5
        h += 0.5
        # The blocks are windowed where the low ring stores them, oldest at slot pos, by the
        # Hann window turned by pos: a circular shift changes only the phases of the spectrum,
        # so the band powers are those of the blocks oldest first, without copying every
        # channel round (views and garbage a channel). The turned window: once per pos.
        self.hr = np.zeros(nz)
        self.hr_pos = -1
        # constants as 1-element arrays: an in-place op with a float allocates its conversion
        self.z0 = np.zeros(1)
        self.m1 = np.zeros(1)
        self.m1v = memoryview(self.m1)
        self.k16 = np.zeros(1)
        self.k16 += 65536.0
        self.soff = np.zeros(1)
        self.soff += 2097152.0  # zoom._SOFF
        # a recording's frames in (the low ring's scratch)
        self.buf = array("f", range(128))
        self.f32 = f32
        # float32 builds: ulab views of the low ring's float arrays
        self.rv = None
        self.low = None
        self.lo16 = self.hi16 = None
        self.spectrogram = False
        if self.pairs is None and utils is not None and hasattr(utils, "spectrogram"):
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
        self.views = [sp[e[b] : e[b + 1]] for b in range(m.zoom_bands)]
        self.scale = 16.0 / (3.0 * nz * nz)

    def compute(self, fe, pos):
        """fe.f[pos ...] = ln(E_z[b] + eps) for every channel's zoom bands."""
        m = fe.model
        f = fe.f
        eps = m.eps
        scale = self.scale
        if self.low.ints:  # x holds block sums in raw counts: units per count, per block
            u = self.low.scale / self.low.r
            scale *= u * u
        e = m.zoom_edges
        self._turn()
        if self.pairs is not None:
            zb = m.zoom_bands
            scale *= 0.25
            for ch in range(0, m.channels, 2):
                two = ch + 1 < m.channels
                self._fill(ch, self.zr)
                if two:
                    self._fill(ch + 1, self.zi)
                else:
                    self.zi *= self.z0
                self.pairs(self, two)
                p = pos + ch * zb
                for v in self.pviews:
                    f[p] = math.log(np.sum(v) * scale + eps)
                    p += 1
                if two:
                    for v in self.pviews2:
                        f[p] = math.log(np.sum(v) * scale + eps)
                        p += 1
            return
        for ch in range(m.channels):
            self._fill(ch, self.x)
            x = self.x
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

    def _fill(self, ch, x):
        # x = channel ch's low-rate blocks as stored (the oldest at slot low.pos), mean
        # removed, times the Hann window turned by low.pos
        nz = self.nz
        low = self.low
        if low.ints:  # S + _SOFF from its two 16-bit halves, exact in float32 (< 2^22)
            x *= self.z0
            x += self.hi16[ch]
            x *= self.k16
            x += self.lo16[ch]
            x -= self.soff
        elif self.f32:
            x *= self.z0
            x += self.rv[ch]
        else:
            buf = low.bufs[ch]
            for i in range(nz):
                x[i] = buf[i]
        self.m1v[0] = np.mean(x)  # type: ignore[call-overload]  # a float buffer's view
        x -= self.m1
        x *= self.hr

    def _turn(self):
        # the Hann window turned to the low ring's oldest slot, when that slot has moved
        pos = self.low.pos
        if pos != self.hr_pos:
            nz = self.nz
            hr = self.hr
            hr *= self.z0
            a = hr[pos:]
            a += self.hann[: nz - pos]
            if pos:
                a = hr[:pos]
                a += self.hann[nz - pos :]
            self.hr_pos = pos
