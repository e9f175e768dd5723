"""When fit adds a zoom block, and which (docs/features.md, "Zoom block": "Fit's rule").

Physics, not tuning: imbalance and misalignment show at 1x and 2x the shaft frequency, 10 and
20 Hz for a 600 rpm machine, the slowest common speed in plants. The Hann window's main lobe
is 2 bins wide on each side, so the leakage of DC and slow drift fills bins 0 and 1; a 10 Hz
line needs bins of at most 5 Hz (ZOOM_BIN_HZ) to land in bin 2 or later, clear of it and one
bin from 2x. When the main bins fs/N are coarser, fit adds a zoom block whose bins are at most
that wide: N_z = 256 (unless given) and R the smallest power of two (2..64) that gets there,
N_z doubled if R = 64 is not enough. The zoom bands cover its bins from ZOOM_LO_BIN (2: clear
of the DC and drift leakage, by the same argument) up to ZOOM_TOP_BINS main bins (where the
main spectrum's log bands are one or two bins wide again): a band of its own for the shaft's
1x line, found in the normal training windows' zoom spectrum (find_line) or given with
--shaft-hz (given_line), the others around it (line_edges); the log layout without a line.

The zoom history (R N_z samples) costs windows: the first ones of every recording have none,
and the held-out split's gap grows to the history's length. Automatically, fit adds the block
only when that costs at most MAX_HISTORY_SHARE of the shortest recording's windows.
"""

import math
from dataclasses import dataclass, replace

import numpy as np

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


# The shaft's 1x line (docs/features.md, "Fit's rule", "The 1x band"). A log band that starts
# at bin 2 and spans several bins dilutes a 1x line with the noise of its other bins, so fit
# looks for the line in the normal data and gives it a band of its own: the Hann main lobe's
# core, the peak bin and one bin either side (a line between two bins falls in it whole).
LINE_HALF_WIDTH = 1  # bins either side of the peak bin in the 1x band
# A clear line: its bin's mean power at least 6 dB (4x) over the median of the bins 2 to 4
# away on either side (outside its main lobe). The mean of ~20 independent periodograms
# scatters by about 1 dB (1/sqrt(20)), so 6 dB is no chance bump.
MIN_PROMINENCE_DB = 6.0
BACKGROUND_BINS = (2, 3, 4)  # distances of the bins the prominence is measured against
LINE_SAMPLE_WINDOWS = 4096  # training windows the line search looks at, evenly spread


@dataclass
class Line:
    """The 1x line the zoom bands were laid around: its zoom bin and where it came from."""

    bin: int
    how: str  # 'found' (in the normal data) or 'given' (--shaft-hz)
    channel: int = -1
    prominence_db: float = 0.0


def zoom_bin_power(recordings, cfg, train_parts, top):
    """(C, top + 5) mean power of each zoom bin 0 ... top + 4 per channel over the training
    windows (``train_parts``: per recording, its range of training windows), float64."""
    nbins = min(cfg.zoom_window // 2, top + 5)
    probe = replace(cfg, edges=np.array([1, 2], np.uint16),
                    zoom_edges=np.arange(nbins + 1, dtype=np.uint16))
    total = sum(len(tr) for tr in train_parts)
    step = max(1, total // LINE_SAMPLE_WINDOWS)
    sums, count = np.zeros((cfg.channels, nbins)), 0
    for rec, tr in zip(recordings, train_parts):
        if not len(tr):
            continue
        # only the samples the training windows cover (their rows are first_window + j)
        end = (probe.first_window + tr.stop - 1) * cfg.hop + cfg.window
        for _, _, zoomed in F._chunks(rec.samples[:end], probe, rec.scale, None, False,
                                      step=step, want_zoom=True):
            sums += zoomed.sum(axis=0, dtype=np.float64)
            count += len(zoomed)
    return sums / max(1, count)


def find_line(power, top):
    """The lowest clear peak (MIN_PROMINENCE_DB) at or above ZOOM_LO_BIN and up to top - 2,
    over all channels, in the mean zoom power ``power`` (C, bins): a Line, or None."""
    db = 10.0 * np.log10(np.maximum(power, 1e-30))
    nbins = db.shape[1]
    best = None
    for c in range(db.shape[0]):
        for k in range(ZOOM_LO_BIN, min(top - 1, nbins - 1)):
            if db[c, k] < db[c, k - 1] or db[c, k] < db[c, k + 1]:
                continue  # not a local maximum
            # bins below ZOOM_LO_BIN hold the DC and drift leakage: not a background
            side = [j for d in BACKGROUND_BINS for j in (k - d, k + d)
                    if ZOOM_LO_BIN <= j < nbins]
            prominence = float(db[c, k] - np.median(db[c, side]))
            if prominence >= MIN_PROMINENCE_DB:
                if best is None or k < best.bin:
                    best = Line(k, "found", c, prominence)
                break
    return best


def given_line(shaft_hz, zoom_hz, zoom_window, option="--shaft-hz/--rpm"):
    """The Line of a stated shaft frequency; refuses one the zoom block cannot place."""
    k = int(math.floor(shaft_hz / zoom_hz + 0.5))
    if k < ZOOM_LO_BIN:
        raise VibrawatchError(
            "the shaft at %g Hz (%s) is below the zoom block's lowest band (bin %d, %.3g Hz "
            "with %.3g Hz bins): use finer zoom bins, e.g. --zoom-window %d" % (
                shaft_hz, option, ZOOM_LO_BIN, ZOOM_LO_BIN * zoom_hz, zoom_hz,
                2 * zoom_window))
    if k + LINE_HALF_WIDTH + 1 > zoom_window // 2:
        raise VibrawatchError(
            "the shaft at %g Hz (%s) is above the zoom block's bins (up to %.4g Hz), and the "
            "main spectrum resolves it: leave %s out" % (
                shaft_hz, option, (zoom_window // 2 - 2) * zoom_hz, option))
    return Line(k, "given")


def line_edges(line_bin, zoom_bands, top, zoom_window):
    """Zoom band edges with a band of its own for the 1x line at ``line_bin``: the peak bin
    +- LINE_HALF_WIDTH, from ZOOM_LO_BIN. The others, in order of need: the bins above it up
    to ``top`` (2x and 3x: misalignment, looseness), log; with three bands or more, one
    band for the bins below it from ZOOM_LO_BIN (sub-synchronous: whirl, belts). Fewer bands
    when the bins are fewer."""
    start = max(ZOOM_LO_BIN, line_bin - LINE_HALF_WIDTH)
    stop = min(zoom_window // 2, line_bin + LINE_HALF_WIDTH + 1)
    below = start > ZOOM_LO_BIN and zoom_bands >= 3
    edges = ([ZOOM_LO_BIN] if below else []) + [start, stop]
    rest = min(zoom_bands - 1 - below, top - stop)
    if rest >= 1:
        edges += [int(e) for e in F.default_band_edges(zoom_window, rest, "log", hi=top,
                                                       lo=stop)[1:]]
    return np.array(edges, np.uint16)


def line_note(line, zoom_hz, top):
    """The fit report's words on how the zoom bands were laid."""
    if line is None:
        return ("no clear 1x line (%g dB over its surroundings) between %.3g and %.3g Hz in "
                "the normal data: zoom bands in the log layout (give --shaft-hz or --rpm to "
                "place the 1x band)" % (MIN_PROMINENCE_DB, ZOOM_LO_BIN * zoom_hz,
                                        (top - 2) * zoom_hz))
    if line.how == "given":
        return "1x band at %.3g Hz as given (--shaft-hz/--rpm)" % (line.bin * zoom_hz)
    return "1x line found at %.3g Hz (ch%d, +%.1f dB over its surroundings)" % (
        line.bin * zoom_hz, line.channel, line.prominence_db)


def layout_of(zoom_edges, zoom_window):
    """How a model's zoom bands were laid, for `info`: ('1x', [line bins]) when they are
    line_edges around a line bin (several when the layouts of several coincide), ('log', [])
    for the log layout over their range, else ('other', [])."""
    e = [int(x) for x in zoom_edges]
    bands = len(e) - 1
    lines = [k for k in range(ZOOM_LO_BIN, e[-1])
             if [int(x) for x in line_edges(k, bands, e[-1], zoom_window)] == e]
    if lines:
        return "1x", lines
    if bands <= e[-1] - e[0] and e == [int(x) for x in F.default_band_edges(
            zoom_window, bands, "log", hi=e[-1], lo=e[0])]:
        return "log", []
    return "other", []
