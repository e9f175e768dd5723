"""Load a vibrawatch model file (formats v1, v2 and v3, docs/model-format.md) into
preallocated arrays.

    from vwatch import model
    m = model.load("/model.vwm")
    m          # <Model 1a2b3c4d: N=256 hop=128 fs=952 C=3 B=16 stats=7 d=57 K=1 thr=80.5>
    m.edges    # array('H'), m.mu and m.lp: array('f')
    m.p        # PCA components: 0, or p > 0 with m.w, m.a (p x d, row-major), m.g: array('f')
               # in place of m.lp (None then; w, a, g are None when p = 0)
    m.k        # Gaussian components (operating modes), 1..4: m.comps holds K tuples
               # (mu, lp, w, a, g); m.mu ... m.g are component 0's
    m.zoom_r   # zoom block: decimation R (0: none), m.zoom_window N_z, m.zoom_bands B_z,
               # m.zoom_edges array('H') or None
    m.flags    # bit 0: learned on the board; m.channel_map: bytearray (one input channel index
               # per model channel, bytearray) or None

Costs: the arrays (2(B+1) [+ 2(B_z+1)] [+ C] + K(4d + 2d(d+1)) bytes, or K(8d + 4p(d+1))
with p components) plus about 500 bytes; the file is read once with `readinto` straight into
them and its CRC-32 computed on the way, never held whole. A version 1 or 2 file reads as
version 3 with no zoom block, K = 1, no flags and no channel map. Such "plain" files are
read here; a file with any of the v3 parts is read by vwatch.modelcheck (so that a board
loading a plain model holds only this much code: its heap is tested to the last few hundred
bytes, and every name here is also a qstr for as long as the board runs).
A defective file raises ModelError ("<path>: <problem>; <what to do>"); the caller keeps the
model it had, because nothing is returned.
"""

import binascii
import math
import struct
from array import array

from micropython import const

from . import Model  # noqa: F401 (vwatch.model.Model, as before: the package's record)

_HEADER = const(64)
_VERSION = const(3)  # reads 1, 2 and 3; a v2 file with p = 0 has the v1 layout
_MAX_N = const(4096)
_MAX_ALARM_N = const(32)
# The fields of docs/model-format.md up to the v3 tail (52 of the 64 header bytes).
_FIELDS = "<4sHHIfHHIBBBBHBBfffII"
_REFIT = "re-export the model with `vibrawatch fit`"


class ModelError(ValueError):
    """A model file that cannot be used; the message names the file, the problem and a fix."""


def _refuse(path, problem, fix=_REFIT):
    raise ModelError("%s: %s; %s" % (path, problem, fix))


def _positive(value):
    return math.isfinite(value) and value > 0


def n_stats(stats):
    return (stats & 1) + (stats >> 1 & 1) + (stats >> 2 & 1)


def record(hdr, edges, comps, crc):
    """A vwatch.Model of a checked header (64 bytes), edges, components
    ((mu, lp, w, a, g), ...) and CRC."""
    m = Model()
    (_, m.version, _, m.size, m.rate, m.window, m.p, m.hop, m.channels, m.bands, m.stats,
     m.estimator, m.d, m.alarm_k, m.alarm_n, m.eps, m.threshold, m.clear, m.n_train,
     m.created) = struct.unpack_from(_FIELDS, hdr)
    m.edges = edges
    m.comps = comps
    m.mu, m.lp, m.w, m.a, m.g = comps[0]
    m.crc = crc
    m.model_id = "%08x" % crc
    return m


def _read_exact(path, f, buf, nbytes):
    if f.readinto(buf) != nbytes:
        _refuse(path, "the file ended early", "the copy is truncated: copy the file again")


def _check_header(path, hdr, size):
    # Raises unless the header's own fields are valid and give the file's size; returns True
    # when the file has v3 parts (checked by vwatch.modelcheck, which also reads them).
    (_, version, _, _, rate, window, p, hop, channels, bands, stats, est, d, alarm_k, alarm_n,
     eps, threshold, clear, _, _) = struct.unpack_from(_FIELDS, hdr)
    if not (16 <= window <= _MAX_N and window & (window - 1) == 0):
        _refuse(path, "window %d is not a power of two in 16..%d" % (window, _MAX_N))
    if not 1 <= channels <= 8 or bands < 1 or stats > 7 or hop < 1 or est > 3:
        _refuse(path, "configuration out of range (channels %d, bands %d, stats %d, hop %d)"
                % (channels, bands, stats, hop))
    if not 1 <= alarm_k <= alarm_n <= _MAX_ALARM_N:
        _refuse(path, "alarm rule %d of %d is invalid (need 1 <= k <= n <= %d)"
                % (alarm_k, alarm_n, _MAX_ALARM_N))
    if version >= _VERSION and (any(hdr[52:56]) or hdr[56] != 1 or any(hdr[57:64])):
        from .modelcheck import check_tail

        check_tail(path, hdr, size)
        return True
    if d != channels * (bands + n_stats(stats)):
        _refuse(path, "%d features do not match %d channels x (%d bands + %d statistics)"
                % (d, channels, bands, n_stats(stats)))
    if p >= d or p and version < 2:
        _refuse(path, "%d PCA components for %d features in a version %d file"
                % (p, d, version))
    for value, what in ((rate, "sample rate"), (eps, "epsilon"), (threshold, "threshold")):
        if not _positive(value):
            _refuse(path, "%s %r is not a positive number" % (what, value))
    if not (math.isfinite(clear) and 0 <= clear <= threshold):
        _refuse(path, "clear threshold %r is not between 0 and the threshold" % clear)
    pad = -2 * (bands + 1) % 4
    # mu, then packed L, or w, A and g
    expected = _HEADER + 2 * (bands + 1) + pad + 4 * d + 4
    expected += 2 * d * (d + 1) if p == 0 else 4 * (d + p * d + p)
    if expected != size:
        _refuse(path, "arrays need %d bytes but the file has %d" % (expected, size))


def load(path):
    """Read and validate the model file at ``path``; return a Model or raise ModelError."""
    try:
        f = open(path, "rb")
    except OSError as exc:
        _refuse(path, "cannot open the model file (%s)" % exc, "check the path")
    try:
        return _load(path, f)
    finally:
        f.close()


def _load(path, f):
    hdr = bytearray(_HEADER)
    actual = f.seek(0, 2)
    f.seek(0)
    if actual < _HEADER + 4:
        _refuse(path, "only %d bytes, shorter than a model header" % actual,
                "the copy is truncated or this is not a model file")
    _read_exact(path, f, hdr, _HEADER)
    magic, version, header_size, size = struct.unpack_from("<4sHHI", hdr)
    if magic != b"VWMF":
        _refuse(path, "not a vibrawatch model (magic %r, expected b'VWMF')" % magic,
                "pass a .vwm file written by `vibrawatch fit`")
    if not 1 <= version <= _VERSION or header_size != _HEADER:
        from .modelcheck import check_crc

        check_crc(path, f, actual, hdr)  # noise after the magic is corrupt, not a new format
        _refuse(path, "model format version %d, this vwatch reads versions 1, 2 and 3"
                % version, "refit with this version or update vwatch")
    if size != actual:
        _refuse(path, "file is %d bytes but its header says %d" % (actual, size),
                "the copy is truncated or padded: copy the file again")
    try:
        extras = _check_header(path, hdr, size)
    except ModelError:
        from .modelcheck import check_crc

        check_crc(path, f, size, hdr)  # a corrupt copy is reported as corrupt
        raise
    if extras:
        from .modelcheck import load_v3

        return load_v3(path, f, hdr)
    _, _, _, _, _, window, p, _, _, bands, _, _, d = struct.unpack_from("<4sHHIfHHIBBBBH", hdr)
    # range() has a length, so array() allocates exactly once; readinto overwrites it.
    edges = array("H", range(bands + 1))
    mu = array("f", range(d))
    lp = w = a = g = None
    if p:
        w = array("f", range(d))
        a = array("f", range(p * d))
        g = array("f", range(p))
        bufs = (edges, mu, w, a, g)
    else:
        lp = array("f", range(d * (d + 1) // 2))
        bufs = (edges, mu, lp)
    crc = binascii.crc32(hdr)
    for buf in bufs:
        size = 2 if buf is edges else 4
        _read_exact(path, f, buf, size * len(buf))
        crc = binascii.crc32(buf, crc)
        if buf is edges and bands % 2 == 0:
            # B + 1 edges are an odd count of uint16: 2 zero bytes pad mu to 4-byte alignment.
            _read_exact(path, f, memoryview(hdr)[:2], 2)
            crc = binascii.crc32(memoryview(hdr)[:2], crc)
    _read_exact(path, f, memoryview(hdr)[:4], 4)
    stored = struct.unpack_from("<I", hdr)[0]
    if crc != stored:
        _refuse(path, "CRC mismatch (stored %08x, computed %08x): the file is corrupt"
                % (stored, crc), "copy it again or re-export it")
    # The arrays are trusted now; the header bytes were overwritten: reread them.
    f.seek(0)
    _read_exact(path, f, hdr, _HEADER)
    last = -1
    for e in edges:
        if e <= last or e > window // 2 + 1:
            _refuse(path, "band edges %s are not strictly increasing within 0..%d"
                    % (list(edges), window // 2 + 1))
        last = e
    for buf in bufs[1:]:
        for v in buf:
            if not math.isfinite(v):
                _refuse(path, "the model's arrays hold NaN or infinity")
            if buf is w and not v > 0:
                _refuse(path, "a residual weight w is %r, not positive" % v)
    return record(hdr, edges, ((mu, lp, w, a, g),), crc)
