"""The model loader for files with version 3 parts (docs/model-format.md, "Version 3": a zoom
block, K > 1 components, flags or a channel map), and the CRC as a second opinion on a file
whose header is wrong.

vwatch.model reads plain files itself and imports this only for the others: a board loading a
plain model then holds less code (the heap budgets are tested to the last few hundred bytes,
and every name a module holds is a qstr for as long as the board runs). The checks and their
order are the host reader's (host/vibrawatch/modelfile.py), word for word.
"""

import binascii
import math
import struct
from array import array

from micropython import const

from .model import _FIELDS, _positive, _read_exact, _refuse, n_stats, record

_HEADER = const(64)
_MAX_K = const(4)
_MAX_ZOOM_R = const(64)
_KNOWN_FLAGS = const(1)  # bit 0: learned on the board


def _pow2_window(n):
    return 16 <= n <= 4096 and n & (n - 1) == 0


def _tail(hdr):
    # zoom R, B_z, N_z, components K, flags, channel map entries M
    return struct.unpack_from("<BBHBBB", hdr, 52)


def check_tail(path, hdr, size):
    """The rest of a v3 header's checks, after the window, configuration and alarm rule:
    raise ModelError unless its v3 fields are consistent and give the file's size."""
    (_, version, _, _, rate, window, p, hop, channels, bands, stats, _, d, _, _, eps,
     threshold, clear, _, _) = struct.unpack_from(_FIELDS, hdr)
    zoom_r, zoom_b, zoom_n, k, flags, m = _tail(hdr)
    if not (zoom_r == zoom_b == zoom_n == 0 or (
            2 <= zoom_r <= _MAX_ZOOM_R and window % zoom_r == 0 and hop % zoom_r == 0
            and zoom_b >= 1 and _pow2_window(zoom_n))):
        _refuse(path, "zoom block R=%d, N_z=%d, B_z=%d is invalid (need all zero, or R in "
                "2..%d dividing the window %d and the hop %d, N_z a power of two in 16..4096 "
                "and B_z >= 1)" % (zoom_r, zoom_n, zoom_b, _MAX_ZOOM_R, window, hop))
    if not 1 <= k <= _MAX_K:
        _refuse(path, "%d Gaussian components (operating modes), need 1..%d" % (k, _MAX_K))
    if flags & ~_KNOWN_FLAGS:
        _refuse(path, "unknown flag bits 0x%02x" % (flags & ~_KNOWN_FLAGS))
    if m != 0 and m != channels:
        _refuse(path, "channel map of %d entries for %d channels (need 0 or %d)"
                % (m, channels, channels))
    if any(hdr[59:64]):
        _refuse(path, "reserved header bytes 59..63 are not zero")
    if d != channels * (bands + n_stats(stats) + zoom_b):
        _refuse(path, "%d features do not match %d channels x (%d bands + %d statistics%s)"
                % (d, channels, bands, n_stats(stats),
                   " + %d zoom bands" % zoom_b if zoom_b else ""))
    if p >= d:
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


def _fill(path, f, buf, nbytes, crc):
    _read_exact(path, f, buf, nbytes)
    return binascii.crc32(buf, crc)


def load_v3(path, f, hdr):
    """The Model of a file whose header check_tail passed, read from just after its header."""
    _, _, _, _, _, window, p, _, _, bands, _, _, d = struct.unpack_from("<4sHHIfHHIBBBBH", hdr)
    zoom_r, zoom_b, zoom_n, k, flags, m = _tail(hdr)
    # range() has a length, so array() allocates exactly once; readinto overwrites it.
    edges = array("H", range(bands + 1))
    crc = _fill(path, f, edges, 2 * (bands + 1), binascii.crc32(hdr))
    zoom_edges = channel_map = None
    if zoom_r:
        zoom_edges = array("H", range(zoom_b + 1))
        crc = _fill(path, f, zoom_edges, 2 * (zoom_b + 1), crc)
    if m:
        channel_map = bytearray(m)
        crc = _fill(path, f, channel_map, m, crc)
    pad = -(2 * (bands + 1) + (2 * (zoom_b + 1) if zoom_r else 0) + m) % 4
    if pad:  # zero bytes pad the float arrays to 4-byte alignment
        crc = _fill(path, f, memoryview(hdr)[:pad], pad, crc)
    comps = ()
    for _ in range(k):
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
        comps += ((mu, lp, w, a, g),)
    _read_exact(path, f, memoryview(hdr)[:4], 4)
    stored = struct.unpack_from("<I", hdr)[0]
    if crc != stored:
        _refuse(path, "CRC mismatch (stored %08x, computed %08x): the file is corrupt"
                % (stored, crc), "copy it again or re-export it")
    # The arrays are trusted now; the header bytes were overwritten: reread them.
    f.seek(0)
    _read_exact(path, f, hdr, _HEADER)
    _increasing(path, "band edges", edges, window // 2 + 1)
    if zoom_r:
        _increasing(path, "zoom band edges", zoom_edges, zoom_n // 2 + 1)
    for i in range(m):
        c = channel_map[i]
        if c == 255 or any(channel_map[j] == c for j in range(i + 1, m)):
            _refuse(path, "channel map %s is invalid (entries must be distinct and below 255)"
                    % list(channel_map))
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
    model = record(hdr, edges, comps, crc)
    model.zoom_r, model.zoom_bands, model.zoom_window, model.k, model.flags = (
        zoom_r, zoom_b, zoom_n, k, flags)
    model.zoom_edges = zoom_edges
    model.channel_map = channel_map
    return model


def _increasing(path, what, edges, top):
    last = -1
    for e in edges:
        if e <= last or e > top:
            _refuse(path, "%s %s are not strictly increasing within 0..%d"
                    % (what, list(edges), top))
        last = e


def check_crc(path, f, size, buf):
    """Raise ModelError if the file's CRC does not match: a structurally bad file that is a
    corrupt copy should say "corrupt". buf: a scratch bytearray."""
    f.seek(0)
    mv = memoryview(buf)
    crc = 0
    left = size - 4
    while left > 0:
        n = f.readinto(mv[: min(left, len(buf))])
        if not n:
            break
        crc = binascii.crc32(mv[:n], crc)
        left -= n
    f.readinto(mv[:4])
    stored = struct.unpack_from("<I", buf)[0]
    if crc != stored:
        _refuse(path, "CRC mismatch (stored %08x, computed %08x): the file is corrupt"
                % (stored, crc), "copy it again or re-export it")
