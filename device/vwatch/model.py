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
bytes, and every name here is also a qstr for as long as the board runs); the pieces both
read the same way (the header record, a component's arrays, the CRC, the checks of values
and edges) are defined here once. `header()` is the one decoder of the header's fields
(vwatch.start sizes the ring with it before the model loads).
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
_TAIL = "<BBHBBB"  # v3, at byte 52: zoom R, B_z, N_z, K, flags, channel map entries M
_REFIT = "re-export the model with `vibrawatch fit`"


class ModelError(ValueError):
    """A model file that cannot be used; the message names the file, the problem and a fix."""


def _refuse(path, problem, fix=_REFIT):
    raise ModelError("%s: %s; %s" % (path, problem, fix))


def _positive(value):
    return math.isfinite(value) and value > 0


def n_stats(stats):
    return (stats & 1) + (stats >> 1 & 1) + (stats >> 2 & 1)


def header(hdr):
    """A vwatch.Model holding the fields of a model file's 64 header bytes (not checked yet,
    no arrays): the one place they are decoded. A version 3 header that uses any v3 part
    (then vwatch.modelcheck reads the file) also sets m.v3, the zoom block, K, the flags and
    an empty channel map of its M entries (or None)."""
    m = Model()
    (_, m.version, _, m.size, m.rate, m.window, m.p, m.hop, m.channels, m.bands, m.stats,
     m.estimator, m.d, m.alarm_k, m.alarm_n, m.eps, m.threshold, m.clear, m.n_train,
     m.created) = struct.unpack_from(_FIELDS, hdr)
    if m.version >= _VERSION and (any(hdr[52:56]) or hdr[56] != 1 or any(hdr[57:64])):
        m.v3 = True
        m.zoom_r, m.zoom_bands, m.zoom_window, m.k, m.flags, entries = struct.unpack_from(
            _TAIL, hdr, 52)
        if entries:
            m.channel_map = bytearray(entries)
    return m


def finish(m, edges, comps, crc):
    """The record m with its checked arrays: edges, components ((mu, lp, w, a, g), ...)."""
    m.edges = edges
    m.comps = comps
    m.mu, m.lp, m.w, m.a, m.g = comps[0]
    m.crc = crc
    m.model_id = "%08x" % crc
    return m


def _read_exact(path, f, buf, nbytes):
    if f.readinto(buf) != nbytes:
        _refuse(path, "the file ended early", "the copy is truncated: copy the file again")


def _check_header(path, m, hdr):
    # Raises unless the header's own fields are valid and give the file's size.
    window = m.window
    if not (16 <= window <= _MAX_N and window & (window - 1) == 0):
        _refuse(path, "window %d is not a power of two in 16..%d" % (window, _MAX_N))
    if (not 1 <= m.channels <= 8 or m.bands < 1 or m.stats > 7 or m.hop < 1
            or m.estimator > 3):
        _refuse(path, "configuration out of range (channels %d, bands %d, stats %d, hop %d)"
                % (m.channels, m.bands, m.stats, m.hop))
    if not 1 <= m.alarm_k <= m.alarm_n <= _MAX_ALARM_N:
        _refuse(path, "alarm rule %d of %d is invalid (need 1 <= k <= n <= %d)"
                % (m.alarm_k, m.alarm_n, _MAX_ALARM_N))
    if m.v3:
        from .modelcheck import check_tail

        check_tail(path, m, hdr)
        return
    d, p = m.d, m.p
    if d != m.channels * (m.bands + n_stats(m.stats)):
        _refuse(path, "%d features do not match %d channels x (%d bands + %d statistics)"
                % (d, m.channels, m.bands, n_stats(m.stats)))
    if p >= d or p and m.version < 2:
        _refuse(path, "%d PCA components for %d features in a version %d file"
                % (p, d, m.version))
    check_numbers(path, m)
    pad = -2 * (m.bands + 1) % 4
    # mu, then packed L, or w, A and g
    expected = _HEADER + 2 * (m.bands + 1) + pad + 4 * d + 4
    expected += 2 * d * (d + 1) if p == 0 else 4 * (d + p * d + p)
    if expected != m.size:
        _refuse(path, "arrays need %d bytes but the file has %d" % (expected, m.size))


def check_numbers(path, m):
    """Raise unless the header record's rate, epsilon and thresholds are usable numbers."""
    for value, what in ((m.rate, "sample rate"), (m.eps, "epsilon"),
                        (m.threshold, "threshold")):
        if not _positive(value):
            _refuse(path, "%s %r is not a positive number" % (what, value))
    if not (math.isfinite(m.clear) and 0 <= m.clear <= m.threshold):
        _refuse(path, "clear threshold %r is not between 0 and the threshold" % m.clear)


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
    magic, version, header_size, size = struct.unpack_from(_FIELDS, hdr)[:4]
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
    m = header(hdr)
    try:
        _check_header(path, m, hdr)
    except ModelError:
        from .modelcheck import check_crc

        check_crc(path, f, size, hdr)  # a corrupt copy is reported as corrupt
        raise
    if m.v3:
        from .modelcheck import load_v3

        return load_v3(path, f, m, hdr)
    bands = m.bands
    # range() has a length, so array() allocates exactly once; readinto overwrites it.
    edges = array("H", range(bands + 1))
    comps = (component(m.d, m.p),)
    crc = fill(path, f, edges, 2 * (bands + 1), binascii.crc32(hdr))
    if bands % 2 == 0:
        # B + 1 edges are an odd count of uint16: 2 zero bytes pad mu to 4-byte alignment.
        crc = fill(path, f, memoryview(hdr)[:2], 2, crc)
    crc = read_arrays(path, f, hdr, comps, crc)
    increasing(path, "band edges", edges, m.window // 2 + 1)
    check_values(path, comps)
    return finish(m, edges, comps, crc)


def component(d, p):
    """One Gaussian component's arrays (mu, lp, w, a, g), those of the other form None, sized
    to be read into: range() has a length, so array() allocates exactly once."""
    if p:
        return (array("f", range(d)), None, array("f", range(d)), array("f", range(p * d)),
                array("f", range(p)))
    return array("f", range(d)), array("f", range(d * (d + 1) // 2)), None, None, None


def fill(path, f, buf, nbytes, crc):
    """Read nbytes into buf; return the CRC-32 continued over them."""
    _read_exact(path, f, buf, nbytes)
    return binascii.crc32(buf, crc)


def read_arrays(path, f, hdr, comps, crc):
    """Read the components' arrays and the stored CRC (into hdr, now scratch); raise unless the
    CRC matches; return it."""
    for comp in comps:
        for buf in comp:
            if buf is not None:
                crc = fill(path, f, buf, 4 * len(buf), crc)
    _read_exact(path, f, memoryview(hdr)[:4], 4)
    stored = struct.unpack_from("<I", hdr)[0]
    if crc != stored:
        _refuse(path, "CRC mismatch (stored %08x, computed %08x): the file is corrupt"
                % (stored, crc), "copy it again or re-export it")
    return crc


def check_values(path, comps):
    """Raise unless every value of the components is finite and every residual weight w
    positive."""
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


def increasing(path, what, edges, top):
    last = -1
    for e in edges:
        if e <= last or e > top:
            _refuse(path, "%s %s are not strictly increasing within 0..%d"
                    % (what, list(edges), top))
        last = e
