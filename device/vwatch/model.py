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
version 3 with no zoom block, K = 1, no flags and no channel map.
A defective file raises ModelError ("<path>: <problem>; <what to do>"); the caller keeps the
model it had, because nothing is returned.
"""

import binascii
import math
import struct
from array import array

from micropython import const

_HEADER = const(64)
_VERSION = const(3)  # reads 1, 2 and 3; a v2 file with p = 0 has the v1 layout
_MAX_N = const(4096)
_MAX_ALARM_N = const(32)
# The fields of docs/model-format.md up to the v3 tail (52 of the 64 header bytes).
_FIELDS = "<4sHHIfHHIBBBBHBBfffII"
# The v3 tail: zoom R, B_z, N_z, components K, flags, channel map M (reserved bytes after).
_TAIL = "<BBHBBB"
# The tail of a v3 file that uses none of it (K = 1): checked here, anything else by modelcheck.
_PLAIN = b"\0\0\0\0\x01\0\0\0\0\0\0\0"
_REFIT = "re-export the model with `vibrawatch fit`"


class ModelError(ValueError):
    """A model file that cannot be used; the message names the file, the problem and a fix."""


def _refuse(path, problem, fix=_REFIT):
    raise ModelError("%s: %s; %s" % (path, problem, fix))


def _positive(value):
    return math.isfinite(value) and value > 0


def n_stats(stats):
    return (stats & 1) + (stats >> 1 & 1) + (stats >> 2 & 1)


def _tail(hdr):
    # (R, B_z, N_z, K, flags, M) of a header; a v1/v2 file's reserved tail reads as none.
    if struct.unpack_from("<H", hdr, 4)[0] < _VERSION:
        return 0, 0, 0, 1, 0, 0
    return struct.unpack_from(_TAIL, hdr, 52)


class Model:
    """A loaded model: configuration, decision rule and arrays (edges, zoom edges, channel map;
    per component mu, then packed L, or w, A and g when p > 0)."""

    def __init__(self, hdr, edges, comps, crc, zoom_edges=None, channel_map=None):
        (_, self.version, _, self.size, self.rate, self.window, self.p, self.hop,
         self.channels, self.bands, self.stats, self.estimator, self.d, self.alarm_k,
         self.alarm_n, self.eps, self.threshold, self.clear, self.n_train,
         self.created) = struct.unpack_from(_FIELDS, hdr)
        (self.zoom_r, self.zoom_bands, self.zoom_window, self.k, self.flags,
         _) = _tail(hdr)
        self.edges = edges
        self.zoom_edges = zoom_edges
        self.channel_map = channel_map
        self.comps = comps
        self.mu, self.lp, self.w, self.a, self.g = comps[0]
        self.crc = crc
        self.model_id = "%08x" % crc

    def __repr__(self):
        return "<Model %s: N=%d hop=%d fs=%g C=%d B=%d stats=%d d=%d K=%d thr=%g>" % (
            self.model_id, self.window, self.hop, self.rate, self.channels, self.bands,
            self.stats, self.d, self.k, self.threshold)


def _corrupt(path, stored, crc):
    _refuse(path, "CRC mismatch (stored %08x, computed %08x): the file is corrupt"
            % (stored, crc), "copy it again or re-export it")


def _read_exact(path, f, buf, nbytes):
    if f.readinto(buf) != nbytes:
        _refuse(path, "the file ended early", "the copy is truncated: copy the file again")


def _check_header(path, hdr, size):
    # Raises unless the header's own fields are valid and give the file's size.
    (_, version, _, _, rate, window, p, hop, channels, bands, stats, est, d, alarm_k, alarm_n,
     eps, threshold, clear, _, _) = struct.unpack_from(_FIELDS, hdr)
    zoom_r, zoom_b, _, k, _, m = _tail(hdr)
    if not (16 <= window <= _MAX_N and window & (window - 1) == 0):
        _refuse(path, "window %d is not a power of two in 16..%d" % (window, _MAX_N))
    if not 1 <= channels <= 8 or bands < 1 or stats > 7 or hop < 1 or est > 3:
        _refuse(path, "configuration out of range (channels %d, bands %d, stats %d, hop %d)"
                % (channels, bands, stats, hop))
    if not 1 <= alarm_k <= alarm_n <= _MAX_ALARM_N:
        _refuse(path, "alarm rule %d of %d is invalid (need 1 <= k <= n <= %d)"
                % (alarm_k, alarm_n, _MAX_ALARM_N))
    if version >= _VERSION and hdr[52:] != _PLAIN:
        # A zoom block, components, flags or a channel map: their checks live apart, so that
        # a board loading a plain model compiles and keeps less code.
        from .modelcheck import check_tail

        check_tail(path, hdr, window, hop, channels)
    if d != channels * (bands + n_stats(stats) + zoom_b):
        _refuse(path, "%d features do not match %d channels x (%d bands + %d statistics%s)"
                % (d, channels, bands, n_stats(stats),
                   " + %d zoom bands" % zoom_b if zoom_b else ""))
    if p >= d or p and version < 2:
        _refuse(path, "%d PCA components for %d features in a version %d file"
                % (p, d, version))
    for value, what in ((rate, "sample rate"), (eps, "epsilon"), (threshold, "threshold")):
        if not _positive(value):
            _refuse(path, "%s %r is not a positive number" % (what, value))
    if not (math.isfinite(clear) and 0 <= clear <= threshold):
        _refuse(path, "clear threshold %r is not between 0 and the threshold" % clear)
    head = 2 * (bands + 1) + (2 * (zoom_b + 1) if zoom_r else 0) + m
    # per component mu, then packed L, or w, A and g
    per = 4 * d + (2 * d * (d + 1) if p == 0 else 4 * (d + p * d + p))
    expected = _HEADER + head + (-head % 4) + k * per + 4
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


def _fill(path, f, buf, nbytes, crc):
    # Read exactly nbytes into buf; the CRC-32 carried on over them.
    _read_exact(path, f, buf, nbytes)
    return binascii.crc32(buf, crc)


def increasing(path, what, edges, top):
    last = -1
    for e in edges:
        if e <= last or e > top:
            _refuse(path, "%s %s are not strictly increasing within 0..%d"
                    % (what, list(edges), top))
        last = e


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
        _refuse(path, "model format version %d, this vwatch reads versions 1, 2 and 3"
                % version, "refit with this version or update vwatch")
    if size != actual:
        _refuse(path, "file is %d bytes but its header says %d" % (actual, size),
                "the copy is truncated or padded: copy the file again")
    try:
        _check_header(path, hdr, size)
    except ModelError:
        from .modelcheck import check_crc

        check_crc(path, f, size, hdr)  # a corrupt copy is reported as corrupt
        raise
    _, _, _, _, _, window, p, _, _, bands, _, _, d = struct.unpack_from("<4sHHIfHHIBBBBH", hdr)
    zoom_r, zoom_b, zoom_n, k, _, m = _tail(hdr)
    # range() has a length, so array() allocates exactly once; readinto overwrites it.
    edges = array("H", range(bands + 1))
    crc = _fill(path, f, edges, 2 * (bands + 1), binascii.crc32(hdr))
    zoom_edges = channel_map = None
    if zoom_r or m:
        from .modelcheck import read_extras

        zoom_edges, channel_map, crc = read_extras(path, f, zoom_b if zoom_r else -1, m, crc)
    # Zero bytes pad the float arrays to 4-byte alignment.
    pad = -(2 * (bands + 1) + (2 * (zoom_b + 1) if zoom_r else 0) + m) % 4
    if pad:
        crc = _fill(path, f, memoryview(hdr)[:pad], pad, crc)
    comps = [None] * k  # type: list
    for i in range(k):
        mu = array("f", range(d))
        lp = w = a = g = None
        if p:
            w = array("f", range(d))
            a = array("f", range(p * d))
            g = array("f", range(p))
            bufs = (mu, w, a, g)
        else:
            lp = array("f", range(d * (d + 1) // 2))
            bufs = (mu, lp)
        for buf in bufs:
            crc = _fill(path, f, buf, 4 * len(buf), crc)
        comps[i] = (mu, lp, w, a, g)
    _read_exact(path, f, memoryview(hdr)[:4], 4)
    stored = struct.unpack_from("<I", hdr)[0]
    if crc != stored:
        _corrupt(path, stored, crc)
    # The arrays are trusted now; the header bytes were overwritten: reread them.
    f.seek(0)
    _read_exact(path, f, hdr, _HEADER)
    increasing(path, "band edges", edges, window // 2 + 1)
    if zoom_r or m:
        from .modelcheck import check_arrays

        check_arrays(path, zoom_edges, zoom_n, channel_map)
    for comp in comps:
        w = comp[2]
        for buf in comp:
            if buf is None:
                continue
            for v in buf:
                if not math.isfinite(v):
                    _refuse(path, "the model's arrays hold NaN or infinity")
                if buf is w and not v > 0:
                    _refuse(path, "a residual weight w is %r, not positive" % v)
    return Model(hdr, edges, tuple(comps), crc, zoom_edges, channel_map)
