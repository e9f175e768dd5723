"""Feature extraction on the host: docs/features.md, vectorised with numpy.

Windows are strided views of the recording (no copy), processed in chunks so that an hour of
8-channel 20 kHz data never has to sit in memory as windows or spectra at once. Arithmetic is
float32, as on a board; the reference (reference.py) checks it in the tests.

    cfg = FeatureConfig(window=1024, hop=512, sample_rate=20000.0, channels=3,
                        edges=default_band_edges(1024, 16), epsilon=1e-6)
    feats = extract(samples, cfg)          # (windows, cfg.n_features) float32
"""

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .errors import VibrawatchError
from .reference import STAT_CREST, STAT_KURTOSIS, STAT_RMS

MIN_WINDOW = 16
MAX_WINDOW = 4096
EPS_RELATIVE = 1e-6  # epsilon = this x the median total band power of the training windows
CHUNK_BYTES = 32 * 1024 * 1024  # working set of one chunk of windows (float32 spectra etc.)

STAT_NAMES = {STAT_RMS: "log_rms", STAT_KURTOSIS: "log_kurtosis", STAT_CREST: "log_crest"}


def check_window(window):
    if not (MIN_WINDOW <= window <= MAX_WINDOW and window & (window - 1) == 0):
        raise VibrawatchError(
            "window %d is not a power of two between %d and %d: try --window 256 or 1024"
            % (window, MIN_WINDOW, MAX_WINDOW))


def default_band_edges(window, bands, layout="log", hi=None, lo=1):
    """Band edges (FFT bin indices) over bins 1..N/2 (lo..hi), as docs/features.md defines
    them."""
    check_window(window)
    hi = window // 2 if hi is None else hi
    if not 1 <= bands <= hi - lo:
        raise VibrawatchError(
            "%d bands do not fit a %d-sample window (at most %d): use fewer --bands or a "
            "longer --window" % (bands, window, hi - lo))
    if layout == "linear":
        return np.array([lo + (i * (hi - lo)) // bands for i in range(bands + 1)], np.uint16)
    if layout != "log":
        raise VibrawatchError("band layout %r is unknown: use 'log' or 'linear'" % layout)
    edges = [lo]
    for i in range(1, bands + 1):
        prev = edges[-1]
        step = (hi / prev) ** (1.0 / (bands - i + 1))
        edge = max(math.floor(prev * step + 0.5), prev + 1)
        edges.append(min(edge, hi - (bands - i)))
    return np.array(edges, np.uint16)


def stat_bits(stats):
    return [bit for bit in (STAT_RMS, STAT_KURTOSIS, STAT_CREST) if stats & bit]


@dataclass(frozen=True)
class FeatureConfig:
    """The feature half of a model: what a window is and how it becomes a vector.

    With a zoom block (``zoom`` = R > 0, docs/features.md "Zoom block") each window also gets
    the bands ``zoom_edges`` of an N_z-point spectrum of the samples decimated by R, and the
    first ``first_window`` windows (too early for a full zoom history) do not exist: row j of
    ``extract`` is window first_window + j."""

    window: int
    hop: int
    sample_rate: float
    channels: int
    edges: np.ndarray
    epsilon: float
    stats: int = 0
    zoom: int = 0  # R, the decimation factor; 0: no zoom block
    zoom_window: int = 0  # N_z
    zoom_edges: np.ndarray | None = None  # bins of the N_z-point spectrum, B_z + 1

    @property
    def bands(self):
        return len(self.edges) - 1

    @property
    def zoom_bands(self):
        return len(self.zoom_edges) - 1 if self.zoom else 0

    @property
    def n_features(self):
        return self.channels * (self.bands + len(stat_bits(self.stats)) + self.zoom_bands)

    @property
    def span(self):
        """Samples a window's features depend on: N, or R N_z when the zoom history is longer."""
        return max(self.window, self.zoom * self.zoom_window)

    @property
    def first_window(self):
        """Index of the first window whose zoom history is complete (0 without zoom)."""
        return first_window(self.window, self.hop, self.zoom, self.zoom_window)

    def feature_names(self):
        """'ch0:12-24Hz' style names in vector order ('ch0:zoom 24-34Hz' for the zoom
        block), for reports and `info`."""
        hz = self.sample_rate / self.window
        names = []
        for c in range(self.channels):
            for b in range(self.bands):
                lo, hi = self.edges[b] * hz, self.edges[b + 1] * hz
                names.append("ch%d:%.0f-%.0fHz" % (c, lo, hi))
            names.extend("ch%d:%s" % (c, STAT_NAMES[bit]) for bit in stat_bits(self.stats))
        for c in range(self.channels):
            names.extend("ch%d:zoom %s" % (c, band) for band in self.zoom_band_names())
        return names

    def zoom_band_names(self):
        """'24-34Hz' for each zoom band (bin k is centred on k fs / (R N_z))."""
        if not self.zoom:
            return []
        hz = self.sample_rate / (self.zoom * self.zoom_window)
        e = self.zoom_edges
        return ["%s-%sHz" % (_hz(e[b] * hz), _hz(e[b + 1] * hz)) for b in range(len(e) - 1)]

    def n_windows(self, frames):
        """Windows that exist in ``frames`` samples (with a zoom block: from first_window)."""
        total = 0 if frames < self.window else (frames - self.window) // self.hop + 1
        return max(0, total - self.first_window)

    def window_start(self, row):
        """First sample of the window in row ``row`` of ``extract``'s output."""
        return (row + self.first_window) * self.hop

    @classmethod
    def from_model(cls, model):
        zoom = model.zoom_r
        return cls(window=model.window, hop=model.hop, sample_rate=model.sample_rate,
                   channels=model.channels, edges=np.asarray(model.edges), stats=model.stats,
                   epsilon=model.epsilon, zoom=zoom,
                   zoom_window=model.zoom_window if zoom else 0,
                   zoom_edges=np.asarray(model.zoom_edges) if zoom else None)


def _hz(value):
    return "%.0f" % value if value >= 10 or value == int(value) else "%.1f" % value


def first_window(window, hop, zoom, zoom_window):
    """The first window i with i H + N >= R N_z (docs/features.md, "Zoom block")."""
    short = zoom * zoom_window - window
    return 0 if not zoom or short <= 0 else -(-short // hop)


def check_zoom(window, hop, zoom, zoom_window, zoom_edges=None):
    """Refuse a zoom block the contract does not allow, saying what to change."""
    if not zoom:
        return
    if not 2 <= zoom <= 64 or window % zoom or hop % zoom:
        raise VibrawatchError(
            "zoom factor %d must be 2..64 and divide both the window (%d) and the hop (%d): "
            "try --zoom %d" % (zoom, window, hop, _divisor_near(zoom, window, hop)))
    if not (MIN_WINDOW <= zoom_window <= MAX_WINDOW and zoom_window & (zoom_window - 1) == 0):
        raise VibrawatchError("zoom window %d is not a power of two between %d and %d: try "
                              "--zoom-window 256" % (zoom_window, MIN_WINDOW, MAX_WINDOW))
    if zoom_edges is not None:
        e = np.asarray(zoom_edges, int)
        if len(e) < 2 or np.any(np.diff(e) <= 0) or e[0] < 0 or e[-1] > zoom_window // 2 + 1:
            raise VibrawatchError("zoom band edges %s are not strictly increasing within "
                                  "0..%d" % (e.tolist(), zoom_window // 2 + 1))


def _divisor_near(zoom, window, hop):
    best = 2
    for r in range(2, 65):
        if window % r == 0 and hop % r == 0 and abs(r - zoom) <= abs(best - zoom):
            best = r
    return best


class _Kernel:
    """Per-spectrum constants, computed once: Hann window and band-summing indices."""

    def __init__(self, n, edges):
        self.hann = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)
        self.scale = np.float32(16.0 / (3.0 * n * n))
        self.lo, self.hi = int(edges[0]), int(edges[-1])
        # reduceat sums runs starting at each edge; offsets relative to the first edge.
        self.starts = (np.asarray(edges[:-1], np.int64) - self.lo)


def _band_energies(windows, kernel):
    """windows: (W, C, N) float32 -> (W, C, B) float32 band energies (spec steps 1-4)."""
    d = windows - windows.mean(axis=-1, keepdims=True, dtype=np.float64).astype(np.float32)
    # scipy's pocketfft transforms float32 natively and, here, about 5x faster than numpy's.
    import scipy.fft  # imported on first use: the CLI's commands that extract nothing start faster

    spec = scipy.fft.rfft(d * kernel.hann, axis=-1, overwrite_x=True)[..., kernel.lo : kernel.hi]
    power = (spec.real * spec.real + spec.imag * spec.imag) * kernel.scale
    return np.add.reduceat(power, kernel.starts, axis=-1).astype(np.float32), d


def _stats(d, eps, stats):
    """Time statistics of mean-removed windows d (W, C, N) -> list of (W, C) arrays."""
    if not stats:
        return []
    d64 = d.astype(np.float64)  # fourth powers of clipped +-16 g signals: keep them exact
    m2 = np.mean(d64 * d64, axis=-1)
    out = []
    if stats & STAT_RMS:
        out.append(0.5 * np.log(m2 + eps))
    if stats & STAT_KURTOSIS:
        m4 = np.mean((d64 * d64) ** 2, axis=-1)
        out.append(np.log((m4 + eps * eps) / (m2 * m2 + eps * eps)))
    if stats & STAT_CREST:
        peak = np.max(np.abs(d64), axis=-1)
        out.append(0.5 * np.log((peak * peak + eps) / (m2 + eps)))
    return out


def band_energies(samples, cfg, scale=1.0, chunk_windows=None, step=1):
    """Yield (W, C, B) float32 band energies, chunk by chunk; samples: (frames, C).

    ``step`` > 1 takes only every step-th window (a cheap look at a long recording)."""
    for energies, _, _ in _chunks(samples, cfg, scale, chunk_windows, False, step):
        yield energies


def _chunks(samples, cfg, scale, chunk_windows, want_stats, step=1, want_zoom=False):
    samples = _as_frames(samples, cfg)
    n_win = cfg.n_windows(samples.shape[0])
    first = cfg.first_window
    kernel = _Kernel(cfg.window, cfg.edges)
    zoom = want_zoom and cfg.zoom
    zoom_kernel = _Kernel(cfg.zoom_window, cfg.zoom_edges) if zoom else None
    if chunk_windows is None:
        per_window = cfg.channels * (cfg.window + cfg.zoom_window) * 4 * 6  # windows, spectra
        chunk_windows = max(1, CHUNK_BYTES // per_window)
    # (frames, C) -> view (W, C, N) with stride hop: no copy until a chunk is processed.
    view = sliding_window_view(samples, cfg.window, axis=0)[:: cfg.hop][first : first + n_win]
    view = view[::step]
    for start in range(0, view.shape[0], chunk_windows):
        windows = np.ascontiguousarray(view[start : start + chunk_windows], dtype=np.float32)
        if scale != 1.0:
            windows *= np.float32(scale)
        energies, d = _band_energies(windows, kernel)
        stats = _stats(d, cfg.epsilon, cfg.stats) if want_stats else []
        zoomed = None
        if zoom:
            rows = range(first + start * step, first + (start + len(windows)) * step, step)
            zoomed = _band_energies(_zoom_windows(samples, cfg, scale, rows), zoom_kernel)[0]
        yield energies, stats, zoomed


def _zoom_windows(samples, cfg, scale, windows):
    """(W, C, N_z) float32: for each window index, its N_z most recent blocks of R samples
    averaged (docs/features.md, "Zoom block"), decimated from just the samples they need."""
    r, nz = cfg.zoom, cfg.zoom_window
    ends = [(i * cfg.hop + cfg.window) // r for i in windows]  # block after each window's last
    lo, hi = ends[0] - nz, ends[-1]
    part = np.asarray(samples[lo * r : hi * r])
    blocks = part.reshape(hi - lo, r, cfg.channels).mean(axis=1, dtype=np.float64)
    low = (blocks * scale).astype(np.float32)
    zview = sliding_window_view(low, nz, axis=0)  # (blocks - nz + 1, C, N_z)
    return np.ascontiguousarray(zview[[e - nz - lo for e in ends]])


def extract(samples, cfg, scale=1.0, chunk_windows=None, progress=None):
    """Feature vectors of every window of ``samples`` (frames, C): (W, d) float32.

    ``scale`` converts stored values to the recording's units (1/32768 for int16 PCM).
    ``progress``, if given, is called with the number of windows done after each chunk.
    With a zoom block, row j is window cfg.first_window + j (the earlier ones do not exist).
    """
    n_win = cfg.n_windows(_as_frames(samples, cfg).shape[0])
    out = np.empty((n_win, cfg.n_features), np.float32)
    per_channel = cfg.bands + len(stat_bits(cfg.stats))
    main = cfg.channels * per_channel
    eps = np.float32(cfg.epsilon)
    row = 0
    for energies, stats, zoomed in _chunks(samples, cfg, scale, chunk_windows, True,
                                           want_zoom=True):
        w = energies.shape[0]
        block = out[row : row + w, :main].reshape(w, cfg.channels, per_channel)
        block[:, :, : cfg.bands] = np.log(energies + eps)
        if cfg.zoom:
            out[row : row + w, main:] = np.log(zoomed + eps).reshape(w, -1)
        for i, stat in enumerate(stats):
            block[:, :, cfg.bands + i] = stat
        row += w
        if progress is not None:
            progress(w)
    return out


def _as_frames(samples, cfg):
    samples = np.asarray(samples) if not isinstance(samples, np.ndarray) else samples
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.ndim != 2 or samples.shape[1] != cfg.channels:
        raise VibrawatchError(
            "the recording has %s channels but the model expects %d: pick them with --channels"
            % (samples.shape[1] if samples.ndim == 2 else "?", cfg.channels))
    return samples


def default_epsilon(energies_chunks):
    """EPS_RELATIVE x the median over windows of the channel-mean total band power."""
    totals = np.concatenate([e.sum(axis=2).mean(axis=1) for e in energies_chunks])
    median = float(np.median(totals)) if totals.size else 0.0
    return EPS_RELATIVE * median
