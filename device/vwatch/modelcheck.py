"""The model loader's checks that a plain, sound file never needs: the version 3 fields
(docs/model-format.md, "Version 3": zoom block, components K, flags, channel map) and the CRC
as a second opinion on a file whose header is wrong.

vwatch.model imports this only for a file that needs it: compiling the loader from source on a
board (deploy --no-compile) fragments the heap just before the model's largest array is
allocated, and every byte of code the loader leaves behind makes that harder.
"""

import binascii
import struct

from micropython import const

from array import array

from .model import _TAIL, _corrupt, _fill, _refuse, increasing

_MAX_K = const(4)
_MAX_ZOOM_R = const(64)
_KNOWN_FLAGS = const(1)  # bit 0: learned on the board


def pow2_window(n):
    return 16 <= n <= 4096 and n & (n - 1) == 0


def read_extras(path, f, zoom_b, m, crc):
    """(zoom edges or None, channel map or None, CRC carried on): the arrays between the band
    edges and the padding; zoom_b < 0 when there is no zoom block, m = 0 without a map."""
    zoom_edges = channel_map = None
    if zoom_b >= 0:
        zoom_edges = array("H", range(zoom_b + 1))
        crc = _fill(path, f, zoom_edges, 2 * (zoom_b + 1), crc)
    if m:
        channel_map = bytearray(m)
        crc = _fill(path, f, channel_map, m, crc)
    return zoom_edges, channel_map, crc


def check_tail(path, hdr, window, hop, channels):
    """Raise ModelError unless the header's v3 fields are consistent."""
    zoom_r, zoom_b, zoom_n, k, flags, m = struct.unpack_from(_TAIL, hdr, 52)
    if not (zoom_r == zoom_b == zoom_n == 0 or (
            2 <= zoom_r <= _MAX_ZOOM_R and window % zoom_r == 0 and hop % zoom_r == 0
            and zoom_b >= 1 and pow2_window(zoom_n))):
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


def check_arrays(path, zoom_edges, zoom_n, channel_map):
    """Raise ModelError unless the zoom edges increase within the zoom spectrum and the
    channel map's entries are distinct and below 255."""
    if zoom_edges is not None:
        increasing(path, "zoom band edges", zoom_edges, zoom_n // 2 + 1)
    if channel_map is not None:
        m = len(channel_map)
        for i in range(m):
            c = channel_map[i]
            if c == 255 or any(channel_map[j] == c for j in range(i + 1, m)):
                _refuse(path, "channel map %s is invalid (entries must be distinct and below "
                        "255)" % list(channel_map))


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
        _corrupt(path, stored, crc)
