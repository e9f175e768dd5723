"""Reading and writing model files (format v1, docs/model-format.md).

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
VERSION = 1
HEADER = struct.Struct("<4sHHIfHHIBBBBHBBfffII12x")
assert HEADER.size == 64
ESTIMATORS = ("ledoitwolf", "mcd", "empirical")
MAX_N = 4096
MAX_ALARM_N = 32


class ModelFileError(VibrawatchError):
    """A model file that cannot be used; the message names the file, the problem and a fix."""


def n_stats(stats):
    return sum(1 for bit in STAT_BITS if stats & bit)


def packed_size(d):
    return d * (d + 1) // 2


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
    packed_l: np.ndarray  # float32, d(d+1)/2: lower Cholesky factor of the precision, packed
    threshold: float
    clear_threshold: float
    alarm_k: int = 3
    alarm_n: int = 5
    estimator: str = "ledoitwolf"
    n_train: int = 0
    created: int = 0
    model_id: str = field(default="", compare=False)  # CRC-32 as 8 hex digits, set on write/read

    @property
    def bands(self):
        return len(self.edges) - 1

    @property
    def n_features(self):
        return self.channels * (self.bands + n_stats(self.stats))

    def cholesky_factor(self):
        """The full lower-triangular L (float64) from its packed form."""
        d = self.n_features
        lower = np.zeros((d, d))
        pos = 0
        for j in range(d):
            lower[j:, j] = self.packed_l[pos : pos + d - j]
            pos += d - j
        return lower

    def to_bytes(self):
        edges = np.asarray(self.edges, dtype="<u2")
        mu = np.asarray(self.mu, dtype="<f4")
        packed = np.asarray(self.packed_l, dtype="<f4")
        pad = b"\0" * (-edges.nbytes % 4)
        size = HEADER.size + edges.nbytes + len(pad) + mu.nbytes + packed.nbytes + 4
        header = HEADER.pack(
            MAGIC, VERSION, HEADER.size, size, self.sample_rate, self.window, 0, self.hop,
            self.channels, self.bands, self.stats, ESTIMATORS.index(self.estimator),
            self.n_features, self.alarm_k, self.alarm_n, self.epsilon, self.threshold,
            self.clear_threshold, self.n_train, self.created,
        )
        body = header + edges.tobytes() + pad + mu.tobytes() + packed.tobytes()
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
    (magic, version, header_size, size, rate, window, _, hop, channels, bands, stats, est,
     d, alarm_k, alarm_n, eps, threshold, clear, n_train, created) = HEADER.unpack_from(blob)
    if magic != MAGIC:
        _refuse(name, "not a vibrawatch model (magic %r, expected %r)" % (magic, MAGIC),
                "pass a .vwm file written by `vibrawatch fit`")
    if version != VERSION or header_size != HEADER.size:
        _refuse(name, "model format version %d, this vibrawatch reads version %d"
                % (version, VERSION),
                "refit with this version or upgrade vibrawatch")
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
    for value, what in ((rate, "sample rate"), (eps, "epsilon"), (threshold, "threshold")):
        if not (math.isfinite(value) and value > 0):
            _refuse(name, "%s %r is not a positive number" % (what, value))
    if not (math.isfinite(clear) and 0 <= clear <= threshold):
        _refuse(name, "clear threshold %r is not between 0 and the threshold" % clear)
    pad = -2 * (bands + 1) % 4
    expected = HEADER.size + 2 * (bands + 1) + pad + 4 * d + 4 * packed_size(d) + 4
    if expected != size:
        _refuse(name, "arrays need %d bytes but the file has %d" % (expected, size))
    pos = HEADER.size
    edges = np.frombuffer(blob, "<u2", bands + 1, pos).astype(np.uint16)
    pos += 2 * (bands + 1) + pad
    mu = np.frombuffer(blob, "<f4", d, pos).astype(np.float32)
    pos += 4 * d
    packed = np.frombuffer(blob, "<f4", packed_size(d), pos).astype(np.float32)
    if np.any(np.diff(edges.astype(int)) <= 0) or edges[-1] > window // 2 + 1:
        _refuse(name, "band edges %s are not strictly increasing within 0..%d"
                % (edges.tolist(), window // 2 + 1))
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(packed))):
        _refuse(name, "mean or Cholesky factor holds NaN or infinity")
    return Model(
        sample_rate=float(rate), window=window, hop=hop, channels=channels, edges=edges,
        stats=stats, epsilon=float(eps), mu=mu, packed_l=packed, threshold=float(threshold),
        clear_threshold=float(clear), alarm_k=alarm_k, alarm_n=alarm_n,
        estimator=ESTIMATORS[est], n_train=n_train, created=created, model_id="%08x" % crc,
    )


def read(path):
    """Read and validate a model file; a missing or unreadable file is a ModelFileError too."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ModelFileError("%s: cannot read the model file (%s)" % (path, exc.strerror)) from exc
    return from_bytes(blob, str(path))
