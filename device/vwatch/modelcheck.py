"""The model loader for files with version 3 parts (docs/model-format.md, "Version 3": a zoom
block, K > 1 components, flags or a channel map), and the CRC as a second opinion on a file
whose header is wrong.

vwatch.model reads plain files itself and imports this only for the others: a board loading a
plain model then holds less code (the heap budgets are tested to the last few hundred bytes,
and every name a module holds is a qstr for as long as the board runs). The checks and their
order are the host reader's (host/vibrawatch/modelfile.py), word for word.
"""

import binascii
import struct
from array import array

from micropython import const

from .model import (_refuse, check_numbers, check_values, component, fill, finish, increasing,
                    n_stats, read_arrays)

_HEADER = const(64)
_MAX_K = const(4)
_MAX_ZOOM_R = const(64)
_KNOWN_FLAGS = const(1)  # bit 0: learned on the board


def _pow2_window(n):
    return 16 <= n <= 4096 and n & (n - 1) == 0


def check_tail(path, m, hdr):
    """The rest of a v3 header's checks (m: its vwatch.model.header record), after the
    window, configuration and alarm rule: raise ModelError unless its v3 fields are
    consistent and give the file's size."""
    window, hop, zoom_r, zoom_b, zoom_n, k = (m.window, m.hop, m.zoom_r, m.zoom_bands,
                                              m.zoom_window, m.k)
    entries = len(m.channel_map) if m.channel_map else 0
    if not (zoom_r == zoom_b == zoom_n == 0 or (
            2 <= zoom_r <= _MAX_ZOOM_R and window % zoom_r == 0 and hop % zoom_r == 0
            and zoom_b >= 1 and _pow2_window(zoom_n))):
        _refuse(path, "zoom block R=%d, N_z=%d, B_z=%d is invalid (need all zero, or R in "
                "2..%d dividing the window %d and the hop %d, N_z a power of two in 16..4096 "
                "and B_z >= 1)" % (zoom_r, zoom_n, zoom_b, _MAX_ZOOM_R, window, hop))
    if not 1 <= k <= _MAX_K:
        _refuse(path, "%d Gaussian components (operating modes), need 1..%d" % (k, _MAX_K))
    if m.flags & ~_KNOWN_FLAGS:
        _refuse(path, "unknown flag bits 0x%02x" % (m.flags & ~_KNOWN_FLAGS))
    if entries != 0 and entries != m.channels:
        _refuse(path, "channel map of %d entries for %d channels (need 0 or %d)"
                % (entries, m.channels, m.channels))
    if any(hdr[59:64]):
        _refuse(path, "reserved header bytes 59..63 are not zero")
    d, p, bands = m.d, m.p, m.bands
    if d != m.channels * (bands + n_stats(m.stats) + zoom_b):
        _refuse(path, "%d features do not match %d channels x (%d bands + %d statistics%s)"
                % (d, m.channels, bands, n_stats(m.stats),
                   " + %d zoom bands" % zoom_b if zoom_b else ""))
    if p >= d:
        _refuse(path, "%d PCA components for %d features in a version %d file"
                % (p, d, m.version))
    check_numbers(path, m)
    head = 2 * (bands + 1) + (2 * (zoom_b + 1) if zoom_r else 0) + entries
    # per component mu, then packed L, or w, A and g
    per = 4 * d + (2 * d * (d + 1) if p == 0 else 4 * (d + p * d + p))
    expected = _HEADER + head + (-head % 4) + k * per + 4
    if expected != m.size:
        _refuse(path, "arrays need %d bytes but the file has %d" % (expected, m.size))


def load_v3(path, f, model, hdr):
    """The Model of a file whose header check_tail passed (model: its header record), read
    from just after its header (hdr: the header's bytes, then scratch)."""
    bands, zoom_r, zoom_b = model.bands, model.zoom_r, model.zoom_bands
    channel_map = model.channel_map
    entries = len(channel_map) if channel_map else 0
    # range() has a length, so array() allocates exactly once; readinto overwrites it.
    edges = array("H", range(bands + 1))
    crc = fill(path, f, edges, 2 * (bands + 1), binascii.crc32(hdr))
    zoom_edges = None
    if zoom_r:
        zoom_edges = array("H", range(zoom_b + 1))
        crc = fill(path, f, zoom_edges, 2 * (zoom_b + 1), crc)
    if entries:
        crc = fill(path, f, channel_map, entries, crc)
    pad = -(2 * (bands + 1) + (2 * (zoom_b + 1) if zoom_r else 0) + entries) % 4
    if pad:  # zero bytes pad the float arrays to 4-byte alignment
        crc = fill(path, f, memoryview(hdr)[:pad], pad, crc)
    comps = tuple(component(model.d, model.p) for _ in range(model.k))
    crc = read_arrays(path, f, hdr, comps, crc)
    increasing(path, "band edges", edges, model.window // 2 + 1)
    if zoom_r:
        increasing(path, "zoom band edges", zoom_edges, model.zoom_window // 2 + 1)
    for i in range(entries):
        c = channel_map[i]
        if c == 255 or any(channel_map[j] == c for j in range(i + 1, entries)):
            _refuse(path, "channel map %s is invalid (entries must be distinct and below 255)"
                    % list(channel_map))
    check_values(path, comps)
    model.zoom_edges = zoom_edges
    return finish(model, edges, comps, crc)


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
