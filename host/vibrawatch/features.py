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


def default_band_edges(window, bands, layout="log"):
    """Band edges (FFT bin indices) over bins 1..N/2, as docs/features.md defines them."""
    check_window(window)
    lo, hi = 1, window // 2
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
    """The feature half of a model: what a window is and how it becomes a vector."""

    window: int
    hop: int
    sample_rate: float
    channels: int
    edges: np.ndarray
    epsilon: float
    stats: int = 0

    @property
    def bands(self):
        return len(self.edges) - 1

    @property
    def n_features(self):
        return self.channels * (self.bands + len(stat_bits(self.stats)))

    def feature_names(self):
        """'ch0:12-24Hz' style names in vector order, for reports and `info`."""
        hz = self.sample_rate / self.window
        names = []
        for c in range(self.channels):
            for b in range(self.bands):
                lo, hi = self.edges[b] * hz, self.edges[b + 1] * hz
                names.append("ch%d:%.0f-%.0fHz" % (c, lo, hi))
            names.extend("ch%d:%s" % (c, STAT_NAMES[bit]) for bit in stat_bits(self.stats))
        return names

    def n_windows(self, frames):
        return 0 if frames < self.window else (frames - self.window) // self.hop + 1

    @classmethod
    def from_model(cls, model):
        return cls(window=model.window, hop=model.hop, sample_rate=model.sample_rate,
                   channels=model.channels, edges=np.asarray(model.edges), stats=model.stats,
                   epsilon=model.epsilon)


class _Kernel:
    """Per-configuration constants, computed once: Hann window and band-summing indices."""

    def __init__(self, cfg):
        n = cfg.window
        self.hann = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)
        self.scale = np.float32(16.0 / (3.0 * n * n))
        self.lo, self.hi = int(cfg.edges[0]), int(cfg.edges[-1])
        # reduceat sums runs starting at each edge; offsets relative to the first edge.
        self.starts = (np.asarray(cfg.edges[:-1], np.int64) - self.lo)


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
    for energies, _ in _chunks(samples, cfg, scale, chunk_windows, False, step):
        yield energies


def _chunks(samples, cfg, scale, chunk_windows, want_stats, step=1):
    samples = _as_frames(samples, cfg)
    n_win = cfg.n_windows(samples.shape[0])
    kernel = _Kernel(cfg)
    if chunk_windows is None:
        per_window = cfg.channels * cfg.window * 4 * 6  # windows, spectrum, power, stats
        chunk_windows = max(1, CHUNK_BYTES // per_window)
    # (frames, C) -> view (W, C, N) with stride hop: no copy until a chunk is processed.
    view = sliding_window_view(samples, cfg.window, axis=0)[:: cfg.hop][:n_win:step]
    for start in range(0, view.shape[0], chunk_windows):
        windows = np.ascontiguousarray(view[start : start + chunk_windows], dtype=np.float32)
        if scale != 1.0:
            windows *= np.float32(scale)
        energies, d = _band_energies(windows, kernel)
        yield energies, (_stats(d, cfg.epsilon, cfg.stats) if want_stats else [])


def extract(samples, cfg, scale=1.0, chunk_windows=None, progress=None):
    """Feature vectors of every window of ``samples`` (frames, C): (W, d) float32.

    ``scale`` converts stored values to the recording's units (1/32768 for int16 PCM).
    ``progress``, if given, is called with the number of windows done after each chunk.
    """
    n_win = cfg.n_windows(_as_frames(samples, cfg).shape[0])
    out = np.empty((n_win, cfg.n_features), np.float32)
    per_channel = cfg.bands + len(stat_bits(cfg.stats))
    row = 0
    for energies, stats in _chunks(samples, cfg, scale, chunk_windows, True):
        w = energies.shape[0]
        block = out[row : row + w].reshape(w, cfg.channels, per_channel)
        block[:, :, : cfg.bands] = np.log(energies + np.float32(cfg.epsilon))
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
