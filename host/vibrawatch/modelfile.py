"""Reading and writing model files (formats v1 and v2, docs/model-format.md).

Version 2 adds an optional PCA reduction: p > 0 components replace the packed Cholesky factor
by a diagonal-plus-low-rank precision P = diag(w) + A^T diag(g) A. A model without one is
still written as version 1, so boards with an older vwatch keep reading it.

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
VERSION = 1  # written when there is no reduction
VERSION_PCA = 2  # written when there is one (p > 0)
VERSIONS = (VERSION, VERSION_PCA)
HEADER = struct.Struct("<4sHHIfHHIBBBBHBBfffII12x")
assert HEADER.size == 64
ESTIMATORS = ("ledoitwolf", "mcd", "empirical", "oas")
MAX_N = 4096
MAX_ALARM_N = 32


class ModelFileError(VibrawatchError):
    """A model file that cannot be used; the message names the file, the problem and a fix."""


def n_stats(stats):
    return sum(1 for bit in STAT_BITS if stats & bit)


def packed_size(d):
    return d * (d + 1) // 2


def array_floats(d, p=0):
    """float32 values after the edges: mu and the packed factor, or mu, w, A and g."""
    return d + (packed_size(d) if p == 0 else d + p * d + p)


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

    @property
    def bands(self):
        return len(self.edges) - 1

    @property
    def n_features(self):
        return self.channels * (self.bands + n_stats(self.stats))

    @property
    def components(self):
        """p: PCA components kept (0: no reduction, the full precision's Cholesky factor)."""
        return 0 if self.a is None else len(self.a)

    @property
    def version(self):
        return VERSION_PCA if self.components else VERSION

    @property
    def array_bytes(self):
        """Bytes of the arrays a board allocates for this model (edges, mu, P's form)."""
        return 2 * (self.bands + 1) + 4 * array_floats(self.n_features, self.components)

    def mahalanobis(self, feats):
        """Squared distances (float64) of the rows of ``feats``, computed from the float32
        arrays as the board computes them (docs/features.md, "Score")."""
        v = np.atleast_2d(np.asarray(feats, np.float64)) - np.asarray(self.mu, np.float64)
        if self.components:
            z = v @ np.asarray(self.a, np.float64).T
            return (v * v) @ np.asarray(self.w, np.float64) + (z * z) @ np.asarray(
                self.g, np.float64)
        return np.sum((v @ self.cholesky_factor()) ** 2, axis=1)

    def precision(self):
        """The precision P (float64, d x d) that the score is v^T P v of, for either form."""
        if self.components:
            a = np.asarray(self.a, np.float64)
            return np.diag(np.asarray(self.w, np.float64)) + (a.T * self.g) @ a
        lower = self.cholesky_factor()
        return lower @ lower.T

    def cholesky_factor(self):
        """The full lower-triangular L (float64) from its packed form (no reduction only)."""
        if self.components:
            raise ValueError("a model with a PCA reduction has no Cholesky factor")
        d = self.n_features
        lower = np.zeros((d, d))
        pos = 0
        for j in range(d):
            lower[j:, j] = self.packed_l[pos : pos + d - j]
            pos += d - j
        return lower

    def to_bytes(self):
        edges = np.asarray(self.edges, dtype="<u2")
        pad = b"\0" * (-edges.nbytes % 4)
        if self.components:
            parts = (self.mu, self.w, np.asarray(self.a).reshape(-1), self.g)
        else:
            parts = (self.mu, self.packed_l)
        arrays = b"".join(np.asarray(x, dtype="<f4").tobytes() for x in parts)
        size = HEADER.size + edges.nbytes + len(pad) + len(arrays) + 4
        header = HEADER.pack(
            MAGIC, self.version, HEADER.size, size, self.sample_rate, self.window,
            self.components, self.hop, self.channels, self.bands, self.stats,
            ESTIMATORS.index(self.estimator), self.n_features, self.alarm_k, self.alarm_n,
            self.epsilon, self.threshold, self.clear_threshold, self.n_train, self.created,
        )
        body = header + edges.tobytes() + pad + arrays
        crc = zlib.crc32(body)
        self.model_id = "%08x" % crc
        blob = body + struct.pack("<I", crc)
        # Never write what we would refuse to read.
        from_bytes(blob, "<new model>")
        return blob

    def write(self, path):
        """Write atomically: a crash mid-write leaves any previous file intact."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(path)
        return path


def _refuse(name, problem, fix="re-export the model with `vibrawatch fit`"):
    raise ModelFileError("%s: %s; %s" % (name, problem, fix))


def from_bytes(blob, name="model"):
    """Parse and validate a model file's bytes; raises ModelFileError on any defect."""
    if len(blob) < HEADER.size + 4:
        _refuse(name, "only %d bytes, shorter than a model header" % len(blob),
                "the copy is truncated or this is not a model file")
    (magic, version, header_size, size, rate, window, p, hop, channels, bands, stats, est,
     d, alarm_k, alarm_n, eps, threshold, clear, n_train, created) = HEADER.unpack_from(blob)
    if magic != MAGIC:
        _refuse(name, "not a vibrawatch model (magic %r, expected %r)" % (magic, MAGIC),
                "pass a .vwm file written by `vibrawatch fit`")
    if version not in VERSIONS or header_size != HEADER.size:
        _refuse(name, "model format version %d, this vibrawatch reads versions 1 and 2"
                % version, "refit with this version or upgrade vibrawatch")
    if size != len(blob):
        _refuse(name, "file is %d bytes but its header says %d" % (len(blob), size),
                "the copy is truncated or padded: copy the file again")
    crc_stored = struct.unpack_from("<I", blob, size - 4)[0]
    crc = zlib.crc32(blob[: size - 4])
    if crc != crc_stored:
        _refuse(name, "CRC mismatch (stored %08x, computed %08x): the file is corrupt"
                % (crc_stored, crc), "copy it again or re-export it")
    if not (16 <= window <= MAX_N and window & (window - 1) == 0):
        _refuse(name, "window %d is not a power of two in 16..%d" % (window, MAX_N))
    if not 1 <= channels <= 8 or bands < 1 or stats > 7 or hop < 1 or est >= len(ESTIMATORS):
        _refuse(name, "configuration out of range (channels %d, bands %d, stats %d, hop %d)"
                % (channels, bands, stats, hop))
    if not 1 <= alarm_k <= alarm_n <= MAX_ALARM_N:
        _refuse(name, "alarm rule %d of %d is invalid (need 1 <= k <= n <= %d)"
                % (alarm_k, alarm_n, MAX_ALARM_N))
    if d != channels * (bands + n_stats(stats)):
        _refuse(name, "%d features do not match %d channels x (%d bands + %d statistics)"
                % (d, channels, bands, n_stats(stats)))
    if p >= d or p and version < VERSION_PCA:
        _refuse(name, "%d PCA components for %d features in a version %d file"
                % (p, d, version))
    for value, what in ((rate, "sample rate"), (eps, "epsilon"), (threshold, "threshold")):
        if not (math.isfinite(value) and value > 0):
            _refuse(name, "%s %r is not a positive number" % (what, value))
    if not (math.isfinite(clear) and 0 <= clear <= threshold):
        _refuse(name, "clear threshold %r is not between 0 and the threshold" % clear)
    pad = -2 * (bands + 1) % 4
    expected = HEADER.size + 2 * (bands + 1) + pad + 4 * array_floats(d, p) + 4
    if expected != size:
        _refuse(name, "arrays need %d bytes but the file has %d" % (expected, size))
    pos = HEADER.size
    edges = np.frombuffer(blob, "<u2", bands + 1, pos).astype(np.uint16)
    pos += 2 * (bands + 1) + pad
    arrays = []
    for count in (d, packed_size(d)) if p == 0 else (d, d, p * d, p):
        arrays.append(np.frombuffer(blob, "<f4", count, pos).astype(np.float32))
        pos += 4 * count
    if np.any(np.diff(edges.astype(int)) <= 0) or edges[-1] > window // 2 + 1:
        _refuse(name, "band edges %s are not strictly increasing within 0..%d"
                % (edges.tolist(), window // 2 + 1))
    for i, x in enumerate(arrays):  # in file order, as the board checks them
        bad = ~np.isfinite(x) | ((x <= 0) if p and i == 1 else False)  # w > 0
        if bad.any():
            first = x[np.argmax(bad)]
            if not np.isfinite(first):
                _refuse(name, "the model's arrays hold NaN or infinity")
            _refuse(name, "a residual weight w is %r, not positive" % float(first))
    mu = arrays[0]
    pca = dict(w=arrays[1], a=arrays[2].reshape(p, d), g=arrays[3]) if p else {}
    return Model(
        sample_rate=float(rate), window=window, hop=hop, channels=channels, edges=edges,
        stats=stats, epsilon=float(eps), mu=mu, packed_l=None if p else arrays[1],
        threshold=float(threshold), clear_threshold=float(clear), alarm_k=alarm_k,
        alarm_n=alarm_n, estimator=ESTIMATORS[est], n_train=n_train, created=created,
        model_id="%08x" % crc, **pca,
    )


def read(path):
    """Read and validate a model file; a missing or unreadable file is a ModelFileError too."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ModelFileError("%s: cannot read the model file (%s)" % (path, exc.strerror)) from exc
    return from_bytes(blob, str(path))
