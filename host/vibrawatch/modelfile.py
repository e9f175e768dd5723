"""Reading and writing model files (formats v1, v2 and v3, docs/model-format.md).

Version 2 adds an optional PCA reduction: p > 0 components replace the packed Cholesky factor
by a diagonal-plus-low-rank precision P = diag(w) + A^T diag(g) A. Version 3 (what is written
now) adds the zoom block's configuration and edges, K Gaussian components (operating modes,
each with its own mean and precision), flags and the channel map; a version 1 or 2 file reads
as version 3 with no zoom block, K = 1, no flags and no channel map.

The board's reader is device/vwatch/model.py; both refuse the same malformed files with the
same reasons, and the tests hold them to it.
"""

import math
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import VibrawatchError
from .reference import STAT_BITS

MAGIC = b"VWMF"
VERSION = 3  # what the writer writes
VERSION_PCA = 2  # the first version with p > 0
VERSIONS = (1, 2, 3)
# The v1 fields, then (v3) zoom R, B_z, N_z, components K, flags, channel map M, reserved.
HEADER = struct.Struct("<4sHHIfHHIBBBBHBBfffIIBBHBBB5s")
assert HEADER.size == 64
ESTIMATORS = ("ledoitwolf", "mcd", "empirical", "oas")
MAX_N = 4096
MAX_ALARM_N = 32
MAX_MODES = 4  # K: Gaussian components a board scores
MAX_ZOOM_R = 64
FLAG_LEARNED = 1  # bit 0: learned on the board (vwatch.learn)
KNOWN_FLAGS = FLAG_LEARNED


class ModelFileError(VibrawatchError):
    """A model file that cannot be used; the message names the file, the problem and a fix."""


def n_stats(stats):
    return sum(1 for bit in STAT_BITS if stats & bit)


def packed_size(d):
    return d * (d + 1) // 2


def array_floats(d, p=0):
    """float32 values after the edges: mu and the packed factor, or mu, w, A and g."""
    return d + (packed_size(d) if p == 0 else d + p * d + p)


def _is_pow2_window(n):
    return 16 <= n <= MAX_N and n & (n - 1) == 0


@dataclass(eq=False)
class Mode:
    """One Gaussian component (an operating mode): its mean and its precision's form, as the
    Model's own mu, packed_l, w, a, g (float32)."""

    mu: np.ndarray
    packed_l: np.ndarray | None
    w: np.ndarray | None = None
    a: np.ndarray | None = None
    g: np.ndarray | None = None

    def arrays(self):
        """The float32 arrays in file order."""
        if self.a is not None:
            return (self.mu, self.w, np.asarray(self.a).reshape(-1), self.g)
        return (self.mu, self.packed_l)

    def distances(self, feats):
        """Squared distances v^T P v (float64) of the rows of ``feats``, v = f - mu: the one
        scorer of the host (docs/features.md, "Score"), from whatever arrays the component
        holds (the file's float32 ones, or a fit's float64 ones: pca.PCAPrecision)."""
        v = np.atleast_2d(np.asarray(feats, np.float64)) - np.asarray(self.mu, np.float64)
        if self.a is not None:  # P = diag(w) + A^T diag(g) A
            z = v @ np.asarray(self.a, np.float64).T
            return (v * v) @ np.asarray(self.w, np.float64) + (z * z) @ np.asarray(
                self.g, np.float64)
        return np.sum((v @ self.cholesky_factor()) ** 2, axis=1)  # P = L L^T

    def cholesky_factor(self):
        """The full lower-triangular L (float64) from its packed form (no reduction only)."""
        if self.a is not None:
            raise ValueError("a model with a PCA reduction has no Cholesky factor")
        d = len(self.mu)
        lower = np.zeros((d, d))
        pos = 0
        for j in range(d):
            lower[j:, j] = self.packed_l[pos : pos + d - j]
            pos += d - j
        return lower


@dataclass(eq=False)  # arrays inside: compare files with to_bytes()
class Model:
    """Everything a board needs: feature configuration, decision rule and the fitted arrays."""

    sample_rate: float
    window: int
    hop: int
    channels: int
    edges: np.ndarray  # uint16, B + 1 FFT bin indices
    stats: int
    epsilon: float
    mu: np.ndarray  # float32, d
    # float32, d(d+1)/2: lower Cholesky factor of the precision, packed; None with a reduction
    packed_l: np.ndarray | None
    threshold: float
    clear_threshold: float
    alarm_k: int = 3
    alarm_n: int = 5
    estimator: str = "ledoitwolf"
    n_train: int = 0
    created: int = 0
    model_id: str = field(default="", compare=False)  # CRC-32 as 8 hex digits, set on write/read
    # The PCA reduction (format v2), all float32: P = diag(w) + A^T diag(g) A.
    w: np.ndarray | None = None  # d: residual precision per feature
    a: np.ndarray | None = None  # (p, d): the components, scaled to the features' units
    g: np.ndarray | None = None  # p: per component, 1/lambda - 1/sigma^2 (negative)
    # Format v3. The zoom block (docs/features.md, "Zoom block"): decimation R (0: none), the
    # zoom window N_z and the B_z + 1 zoom band edges (uint16 bins of the N_z-point spectrum).
    zoom_r: int = 0
    zoom_window: int = 0
    zoom_edges: np.ndarray | None = None
    # Components 1 .. K-1 (operating modes); component 0 is mu, packed_l, w, a, g above.
    extra_modes: tuple = ()
    flags: int = 0  # FLAG_LEARNED: learned on the board
    # For each model channel, its index among the recording's channels (None: not recorded).
    input_channels: tuple | None = None
    read_version: int = field(default=VERSION, compare=False)  # the version the file had

    @classmethod
    def from_modes(cls, modes, **config):
        """A model of K >= 1 components: ``modes`` a sequence of Mode, ``config`` the rest."""
        first = modes[0]
        return cls(mu=first.mu, packed_l=first.packed_l, w=first.w, a=first.a, g=first.g,
                   extra_modes=tuple(modes[1:]), **config)

    @property
    def bands(self):
        return len(self.edges) - 1

    @property
    def zoom_bands(self):
        """B_z: zoom bands per channel (0 without a zoom block)."""
        return 0 if self.zoom_edges is None else len(self.zoom_edges) - 1

    @property
    def n_features(self):
        return self.channels * (self.bands + n_stats(self.stats) + self.zoom_bands)

    @property
    def components(self):
        """p: PCA components kept (0: no reduction, the full precision's Cholesky factor)."""
        return 0 if self.a is None else len(self.a)

    @property
    def modes(self):
        """The K Gaussian components (operating modes), component 0 first."""
        return (Mode(self.mu, self.packed_l, self.w, self.a, self.g),) + tuple(self.extra_modes)

    @property
    def n_modes(self):
        """K: Gaussian components (operating modes); the score is the smallest distance."""
        return 1 + len(self.extra_modes)

    @property
    def learned(self):
        return bool(self.flags & FLAG_LEARNED)

    @property
    def version(self):
        """The format version to_bytes writes."""
        return VERSION

    @property
    def array_bytes(self):
        """Bytes of the arrays a board allocates for this model (edges, zoom edges, channel
        map, and each component's mu and P's form)."""
        return (2 * (self.bands + 1) + (2 * (self.zoom_bands + 1) if self.zoom_r else 0)
                + len(self.input_channels or ())
                + 4 * self.n_modes * array_floats(self.n_features, self.components))

    def mode_distances(self, feats):
        """(windows, K) squared distances (float64) of the rows of ``feats`` to each
        component, computed from the float32 arrays as the board computes them."""
        return np.stack([self._distance(feats, k) for k in range(self.n_modes)], axis=1)

    def mahalanobis(self, feats):
        """Squared distances (float64) of the rows of ``feats``: the smallest over the K
        components (docs/features.md, "Score"); nearest_mode says which gave it."""
        if self.n_modes == 1:
            return self._distance(feats, 0)
        return self.mode_distances(feats).min(axis=1)

    def nearest_mode(self, feats):
        """Per row of ``feats``, the component that gave its score (the first on a tie)."""
        return np.argmin(self.mode_distances(feats), axis=1)

    def _distance(self, feats, k):
        return self.modes[k].distances(feats)

    def precision(self, k=0):
        """The precision P_k (float64, d x d) of component k, that its score is v^T P v of,
        for either form."""
        mode = self.modes[k]
        if self.components:
            a = np.asarray(mode.a, np.float64)
            return np.diag(np.asarray(mode.w, np.float64)) + (a.T * mode.g) @ a
        lower = self.cholesky_factor(k)
        return lower @ lower.T

    def cholesky_factor(self, k=0):
        """Component k's full lower-triangular L (float64) from its packed form (no
        reduction only)."""
        return self.modes[k].cholesky_factor()

    def to_bytes(self):
        edges = np.asarray(self.edges, dtype="<u2")
        head = edges.tobytes()
        if self.zoom_edges is not None:
            head += np.asarray(self.zoom_edges, dtype="<u2").tobytes()
        cmap = self.input_channels
        if cmap is not None:
            if not all(isinstance(c, (int, np.integer)) and 0 <= c < 255 for c in cmap):
                raise ValueError("input channels %r must be integers 0..254" % (cmap,))
            head += bytes(int(c) for c in cmap)
        head += b"\0" * (-len(head) % 4)
        arrays = b"".join(np.asarray(x, dtype="<f4").tobytes()
                          for mode in self.modes for x in mode.arrays())
        size = HEADER.size + len(head) + len(arrays) + 4
        header = HEADER.pack(
            MAGIC, self.version, HEADER.size, size, self.sample_rate, self.window,
            self.components, self.hop, self.channels, self.bands, self.stats,
            ESTIMATORS.index(self.estimator), self.n_features, self.alarm_k, self.alarm_n,
            self.epsilon, self.threshold, self.clear_threshold, self.n_train, self.created,
            self.zoom_r, self.zoom_bands, self.zoom_window, self.n_modes, self.flags,
            0 if cmap is None else len(cmap), b"",
        )
        body = header + head + arrays
        crc = zlib.crc32(body)
        self.model_id = "%08x" % crc
        blob = body + struct.pack("<I", crc)
        # Never write what we would refuse to read.
        from_bytes(blob, "<new model>")
        return blob

    def write(self, path):
        """Write atomically: a crash mid-write leaves any previous file intact."""
        from .outputs import write_bytes

        return write_bytes(path, self.to_bytes())


def _refuse(name, problem, fix="re-export the model with `vibrawatch fit`"):
    raise ModelFileError("%s: %s; %s" % (name, problem, fix))


def from_bytes(blob, name="model"):
    """Parse and validate a model file's bytes; raises ModelFileError on any defect."""
    if len(blob) < HEADER.size + 4:
        _refuse(name, "only %d bytes, shorter than a model header" % len(blob),
                "the copy is truncated or this is not a model file")
    (magic, version, header_size, size, rate, window, p, hop, channels, bands, stats, est,
     d, alarm_k, alarm_n, eps, threshold, clear, n_train, created, zoom_r, zoom_b, zoom_n,
     k, flags, m, reserved) = HEADER.unpack_from(blob)
    if magic != MAGIC:
        _refuse(name, "not a vibrawatch model (magic %r, expected %r)" % (magic, MAGIC),
                "pass a .vwm file written by `vibrawatch fit`")
    if version not in VERSIONS or header_size != HEADER.size:
        stored, computed = struct.unpack_from("<I", blob, len(blob) - 4)[0], zlib.crc32(blob[:-4])
        if stored != computed:  # noise after the magic is corrupt, not a newer format
            _refuse(name, "CRC mismatch (stored %08x, computed %08x): the file is corrupt"
                    % (stored, computed), "copy it again or re-export it")
        _refuse(name, "model format version %d, this vibrawatch reads versions 1, 2 and 3"
                % version, "refit with this version or upgrade vibrawatch")
    if version < 3:  # the tail was reserved: no zoom block, one component, no flags, no map
        zoom_r = zoom_b = zoom_n = flags = m = 0
        k, reserved = 1, bytes(5)
    if size != len(blob):
        _refuse(name, "file is %d bytes but its header says %d" % (len(blob), size),
                "the copy is truncated or padded: copy the file again")
    crc_stored = struct.unpack_from("<I", blob, size - 4)[0]
    crc = zlib.crc32(blob[: size - 4])
    if crc != crc_stored:
        _refuse(name, "CRC mismatch (stored %08x, computed %08x): the file is corrupt"
                % (crc_stored, crc), "copy it again or re-export it")
    if not _is_pow2_window(window):
        _refuse(name, "window %d is not a power of two in 16..%d" % (window, MAX_N))
    if not 1 <= channels <= 8 or bands < 1 or stats > 7 or hop < 1 or est >= len(ESTIMATORS):
        _refuse(name, "configuration out of range (channels %d, bands %d, stats %d, hop %d)"
                % (channels, bands, stats, hop))
    if not 1 <= alarm_k <= alarm_n <= MAX_ALARM_N:
        _refuse(name, "alarm rule %d of %d is invalid (need 1 <= k <= n <= %d)"
                % (alarm_k, alarm_n, MAX_ALARM_N))
    if not (zoom_r == zoom_b == zoom_n == 0 or (
            2 <= zoom_r <= MAX_ZOOM_R and window % zoom_r == 0 and hop % zoom_r == 0
            and zoom_b >= 1 and _is_pow2_window(zoom_n))):
        _refuse(name, "zoom block R=%d, N_z=%d, B_z=%d is invalid (need all zero, or R in "
                "2..%d dividing the window %d and the hop %d, N_z a power of two in 16..%d "
                "and B_z >= 1)" % (zoom_r, zoom_n, zoom_b, MAX_ZOOM_R, window, hop, MAX_N))
    if not 1 <= k <= MAX_MODES:
        _refuse(name, "%d Gaussian components (operating modes), need 1..%d" % (k, MAX_MODES))
    if flags & ~KNOWN_FLAGS:
        _refuse(name, "unknown flag bits 0x%02x" % (flags & ~KNOWN_FLAGS))
    if m not in (0, channels):
        _refuse(name, "channel map of %d entries for %d channels (need 0 or %d)"
                % (m, channels, channels))
    if reserved != bytes(5):
        _refuse(name, "reserved header bytes 59..63 are not zero")
    if d != channels * (bands + n_stats(stats) + zoom_b):
        _refuse(name, "%d features do not match %d channels x (%d bands + %d statistics%s)"
                % (d, channels, bands, n_stats(stats),
                   " + %d zoom bands" % zoom_b if zoom_b else ""))
    if p >= d or p and version < VERSION_PCA:
        _refuse(name, "%d PCA components for %d features in a version %d file"
                % (p, d, version))
    for value, what in ((rate, "sample rate"), (eps, "epsilon"), (threshold, "threshold")):
        if not (math.isfinite(value) and value > 0):
            _refuse(name, "%s %r is not a positive number" % (what, value))
    if not (math.isfinite(clear) and 0 <= clear <= threshold):
        _refuse(name, "clear threshold %r is not between 0 and the threshold" % clear)
    head = 2 * (bands + 1) + (2 * (zoom_b + 1) if zoom_r else 0) + m
    pad = -head % 4
    expected = HEADER.size + head + pad + 4 * k * array_floats(d, p) + 4
    if expected != size:
        _refuse(name, "arrays need %d bytes but the file has %d" % (expected, size))
    pos = HEADER.size
    edges = np.frombuffer(blob, "<u2", bands + 1, pos).astype(np.uint16)
    pos += 2 * (bands + 1)
    zoom_edges = None
    if zoom_r:
        zoom_edges = np.frombuffer(blob, "<u2", zoom_b + 1, pos).astype(np.uint16)
        pos += 2 * (zoom_b + 1)
    cmap = tuple(blob[pos : pos + m]) if m else None
    pos += m + pad
    modes = []
    for _ in range(k):
        arrays = []
        for count in (d, packed_size(d)) if p == 0 else (d, d, p * d, p):
            arrays.append(np.frombuffer(blob, "<f4", count, pos).astype(np.float32))
            pos += 4 * count
        modes.append(arrays)
    if np.any(np.diff(edges.astype(int)) <= 0) or edges[-1] > window // 2 + 1:
        _refuse(name, "band edges %s are not strictly increasing within 0..%d"
                % (edges.tolist(), window // 2 + 1))
    if zoom_r and (np.any(np.diff(zoom_edges.astype(int)) <= 0)
                   or zoom_edges[-1] > zoom_n // 2 + 1):
        _refuse(name, "zoom band edges %s are not strictly increasing within 0..%d"
                % (zoom_edges.tolist(), zoom_n // 2 + 1))
    if cmap is not None and (len(set(cmap)) != m or max(cmap) >= 255):
        _refuse(name, "channel map %s is invalid (entries must be distinct and below 255)"
                % list(cmap))
    for arrays in modes:
        for i, x in enumerate(arrays):  # in file order, as the board checks them
            bad = ~np.isfinite(x) | ((x <= 0) if p and i == 1 else False)  # w > 0
            if bad.any():
                first = x[np.argmax(bad)]
                if not np.isfinite(first):
                    _refuse(name, "the model's arrays hold NaN or infinity")
                _refuse(name, "a residual weight w is %r, not positive" % float(first))
    if p:
        modes = [Mode(x[0], None, x[1], x[2].reshape(p, d), x[3]) for x in modes]
    else:
        modes = [Mode(x[0], x[1]) for x in modes]
    return Model.from_modes(
        modes, sample_rate=float(rate), window=window, hop=hop, channels=channels,
        edges=edges, stats=stats, epsilon=float(eps), threshold=float(threshold),
        clear_threshold=float(clear), alarm_k=alarm_k, alarm_n=alarm_n,
        estimator=ESTIMATORS[est], n_train=n_train, created=created, model_id="%08x" % crc,
        zoom_r=zoom_r, zoom_window=zoom_n, zoom_edges=zoom_edges, flags=flags,
        input_channels=cmap, read_version=version,
    )


def read(path):
    """Read and validate a model file; a missing or unreadable file is a ModelFileError too."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ModelFileError("%s: cannot read the model file (%s)" % (path, exc.strerror)) from exc
    return from_bytes(blob, str(path))
