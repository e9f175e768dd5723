"""Write a model learned on the board (vwatch.learning): format version 3, one component, the
full form, flag bit 0 "learned on the board" (docs/model-format.md), atomically.

XX

The file goes to path + ".tmp", is read back and its CRC checked, then renamed over ``path``:
a reset or power cut at any point leaves the previous file. Costs: the 64-byte header and a
256-byte read-back buffer; the arrays are written from where they are.
"""

import os
import struct

from micropython import const

_OAS = const(3)  # the estimator byte
_FIELDS = "<4sHHIfHHIBBBBHBBfffII"
_FLAG_LEARNED = const(1)  # docs/model-format.md, "Version 3": flags bit 0


def _header(m):
    # Version 3: the v1 fields, then zoom R, B_z, N_z, K = 1, flags, channel map M.
    hdr = bytearray(64)
    struct.pack_into(_FIELDS, hdr, 0, b"VWMF", 3, 64, m.size, m.rate, m.window, 0,
                     m.hop, m.channels, m.bands, m.stats, _OAS, m.d, m.alarm_k, m.alarm_n,
                     m.eps, m.threshold, m.clear, m.n_train, m.created)
    struct.pack_into("<BBHBBB", hdr, 52, m.zoom_r, m.zoom_bands, m.zoom_window, 1,
                     _FLAG_LEARNED, len(m.channel_map or b""))
    return hdr


def write(m, path):
    """Write the model m (p = 0, K = 1) to ``path`` atomically, format version 3 flagged
    "learned on the board"; return its CRC (the model id)."""
    import binascii

    cmap = m.channel_map or b""
    small = [m.edges]
    if m.zoom_r:
        small.append(m.zoom_edges)
    small.append(cmap)
    head = 2 * (m.bands + 1) + (2 * (m.zoom_bands + 1) if m.zoom_r else 0) + len(cmap)
    pad = -head % 4
    m.size = 64 + head + pad + 4 * (len(m.mu) + len(m.lp)) + 4
    m.flags = _FLAG_LEARNED
    m.version = 3
    hdr = _header(m)
    tmp = path + ".tmp"
    crc = 0
    with open(tmp, "wb") as f:
        for part in [hdr] + small + [bytes(pad), m.mu, m.lp]:
            f.write(part)
            crc = binascii.crc32(part, crc)
        f.write(struct.pack("<I", crc))
    # Read it back before it replaces anything: a bad flash write must not cost the old model.
    buf = bytearray(256)
    mv = memoryview(buf)
    check = 0
    with open(tmp, "rb") as f:
        left = m.size - 4
        while left > 0:
            n = f.readinto(mv[: min(left, 256)])
            if not n:
                break
            check = binascii.crc32(mv[:n], check)
            left -= n
        n = f.readinto(mv[:4])
    if left or n != 4 or check != crc or struct.unpack_from("<I", buf)[0] != crc:
        os.remove(tmp)
        raise OSError("%s did not read back as written: the filesystem may be full or worn; "
                      "the previous model is unchanged" % tmp)
    try:
        os.rename(tmp, path)  # atomic where the filesystem replaces (littlefs, unix)
    except OSError:  # FAT will not rename over a file: a short window without one
        os.remove(path)
        os.rename(tmp, path)
    return crc
