"""When fit adds a zoom block, and which (docs/features.md, "Zoom block": "Fit's rule").

Physics, not tuning: imbalance and misalignment show at 1x and 2x the shaft frequency, 10 and
20 Hz for a 600 rpm machine, the slowest common speed in plants. The Hann window's main lobe
is 2 bins wide on each side, so the leakage of DC and slow drift fills bins 0 and 1; a 10 Hz
line needs bins of at most 5 Hz (ZOOM_BIN_HZ) to land in bin 2 or later, clear of it and one
bin from 2x. When the main bins fs/N are coarser, fit adds a zoom block whose bins are at most
that wide: N_z = 256 (unless given) and R the smallest power of two (2..64) that gets there,
N_z doubled if R = 64 is not enough. The zoom bands cover its bins from ZOOM_LO_BIN (2: clear
of the DC and drift leakage, by the same argument) up to ZOOM_TOP_BINS main bins (where the
main spectrum's log bands are one or two bins wide again), log layout.

The zoom history (R N_z samples) costs windows: the first ones of every recording have none,
and the held-out split's gap grows to the history's length. Automatically, fit adds the block
only when that costs at most MAX_HISTORY_SHARE of the shortest recording's windows.
"""

import math

from . import features as F
from .errors import VibrawatchError

ZOOM_BIN_HZ = 5.0  # a 600 rpm shaft's 1x (10 Hz) two bins clear of DC
ZOOM_WINDOW = 256  # N_z unless given: 1 KB a channel for the low ring (float32)
ZOOM_TOP_BINS = 4  # zoom bands reach up to 4 main bins
ZOOM_LO_BIN = 2  # the first zoom band starts here, clear of the DC leakage (bins 0 and 1)
MAX_HISTORY_SHARE = 0.25  # auto: the zoom history may cost this share of a recording's windows
MAX_ZOOM = 64


def _pow2_at_least(x):
    r = 1
    while r < x:
        r *= 2
    return r


def choose(rate, window, hop, zoom="auto", zoom_window=None):
    """(R, N_z, note): the zoom block fit adds, R = 0 for none; ``zoom`` is 'auto', 'off' or
    a factor R. Raises VibrawatchError for a zoom block the contract does not allow."""
    if zoom == "off":
        return 0, 0, ""
    bin_hz = rate / window
    if zoom == "auto" and bin_hz <= ZOOM_BIN_HZ:
        return 0, 0, ""
    nz = zoom_window or ZOOM_WINDOW
    if zoom == "auto":
        r = max(2, _pow2_at_least(rate / (ZOOM_BIN_HZ * nz)))
        while r > MAX_ZOOM and zoom_window is None and nz < F.MAX_WINDOW:
            nz *= 2
            r = max(2, _pow2_at_least(rate / (ZOOM_BIN_HZ * nz)))
        r = min(r, MAX_ZOOM)
        if window % r or hop % r:
            return 0, 0, ("no zoom block: the main bins (%.3g Hz) are coarser than %g Hz, but "
                          "the hop %d is not a multiple of its decimation %d; use a hop that is, "
                          "or --zoom off to silence this" % (bin_hz, ZOOM_BIN_HZ, hop, r))
        why = "the main bins (%.3g Hz) are coarser than %g Hz" % (bin_hz, ZOOM_BIN_HZ)
    else:
        r = int(zoom)
        why = "asked for with --zoom %d" % r
    F.check_zoom(window, hop, r, nz)
    if hop > window:
        raise VibrawatchError("a zoom block needs every sample: hop %d is longer than the "
                              "window %d (duty cycling); use --hop at most the window or "
                              "--zoom off" % (hop, window))
    zbin = rate / (r * nz)
    note = ("zoom block added: %s; R = %d, N_z = %d: %.3g Hz bins (%s; --zoom off leaves it "
            "out)" % (why, r, nz, zbin, "%d samples of history, %.2f s" % (r * nz,
                                                                            r * nz / rate)))
    return r, nz, note


def top_bin(window, r, nz):
    """Highest zoom bin the default zoom bands reach: ZOOM_TOP_BINS main bins, at most N_z/2."""
    return max(2, min(nz // 2, int(math.ceil(ZOOM_TOP_BINS * r * nz / window))))


def split_bands(total, top):
    """(main bands, zoom bands) out of ``total`` bands a channel may have: a third to the zoom
    block (at least 1, at most its bins), the rest to the main spectrum (at least 1)."""
    zb = max(1, min(top - 1, total // 3))
    return max(1, total - zb), zb


def history_cost(window, hop, r, nz):
    """Windows of a recording the zoom history costs: those before it is complete, and the
    gap after a training split that grows from the window's length to the history's."""
    span = r * nz
    first = max(0, -(-(span - window) // hop))
    return first + (-(-span // hop)) - (-(-window // hop))


def too_short(frames, window, hop, r, nz):
    """A note when the shortest recording (``frames`` samples) is too short for the zoom
    history, else ''."""
    windows = max(0, (frames - window) // hop + 1)
    cost = history_cost(window, hop, r, nz)
    if cost <= MAX_HISTORY_SHARE * windows:
        return ""
    return ("no zoom block although the main bins are coarser than %g Hz: its %d samples of "
            "history would cost %d of the %d windows of the shortest recording; record longer "
            "or force it with --zoom %d" % (ZOOM_BIN_HZ, r * nz, cost, windows, r))
