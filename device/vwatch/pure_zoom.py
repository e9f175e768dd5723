"""The zoom block's bands on the pure backend (vwatch.pure_kernels on an N_z-float buffer).

    zp = pure_zoom.Zoom(model, fe)    # fe: the pure Features (its low ring and window buffer)
    zp.compute(fe, pos)               # fe.f[pos ...] = the zoom bands of every channel

Costs N_z bytes for its quarter-wave sine table, and 4 N_z for the spectrum unless the
window buffer is as long (N_z <= N: shared).
"""

import math
from array import array


class Zoom:
    """The zoom bands with the pure backend's kernels (vwatch.pure_kernels) on an N_z-float
    buffer."""

    def __init__(self, m, fe):
        nz = m.zoom_window
        self.low = fe.low
        self.nz = nz
        # the window buffer is free once the main features are done: shared when it is long
        # enough (N_z <= N)
        self.z = fe.z if len(fe.z) >= nz else array("f", range(nz))
        self.tw = array("f", range(nz // 4 + 1))
        for k in range(nz // 4 + 1):
            self.tw[k] = math.sin(2 * math.pi * k / nz)
        self.scale = 16.0 / (3.0 * nz * nz)

    def compute(self, fe, pos):
        """fe.f[pos ...] = the zoom bands of every channel (the low ring is ready)."""
        m = fe.model
        dsp = fe.kernels
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
