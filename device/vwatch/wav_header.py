"""The header of a WAV recording: format, channels, rate and where the samples are.

    from vwatch.wav_header import WavHeader
    h = WavHeader("/rec.wav")        # h.rate, h.channels, h.frames, h.kind ('h' or 'f')
    h.close()

Reads RIFF/WAVE with PCM int16 (format 1) or IEEE float32 (format 3), also inside
WAVE_FORMAT_EXTENSIBLE, 1 to 8 channels; other chunks are skipped. A file it cannot use
raises WavError naming the file, the problem and a fix. Its own module, without the sample
reader (vwatch.wav), because the replay sensor needs only this: less code to load beside a
finished run's objects (vwatch.runtime keeps them for the next run).
"""

import struct

from micropython import const

_PCM = const(1)
_FLOAT = const(3)
_EXTENSIBLE = const(0xFFFE)
_SUPPORTED = "PCM int16 (format 1, 16 bits) or IEEE float32 (format 3, 32 bits)"


class WavError(ValueError):
    """A recording that cannot be read; the message names the file, the problem and a fix."""


class WavHeader:
    def __init__(self, path):
        self.path = path
        self._f = open(path, "rb")
        try:
            self._parse()
        except Exception:
            self._f.close()
            raise

    def _refuse(self, problem, fix="pass a RIFF/WAVE file with " + _SUPPORTED):
        raise WavError("%s: %s; %s" % (self.path, problem, fix))

    def _parse(self):
        f = self._f
        size = f.seek(0, 2)
        f.seek(0)
        head = bytearray(40)
        mv = memoryview(head)
        if f.readinto(mv[:12]) != 12 or head[0:4] != b"RIFF" or head[8:12] != b"WAVE":
            self._refuse("not a WAV file (no RIFF/WAVE header)")
        pos = 12
        fmt = None
        data = None
        while pos + 8 <= size and (fmt is None or data is None):
            f.seek(pos)
            f.readinto(mv[:8])
            cid = bytes(head[0:4])
            clen = struct.unpack_from("<I", head, 4)[0]
            body = pos + 8
            if cid == b"fmt ":
                n = min(clen, 40)
                if n < 16 or f.readinto(mv[:n]) != n:
                    self._refuse("its fmt chunk is %d bytes, shorter than 16" % clen)
                fmt = struct.unpack_from("<HHIIHH", head)
                if fmt[0] == _EXTENSIBLE:
                    if n < 40:
                        self._refuse("its WAVE_FORMAT_EXTENSIBLE fmt chunk is %d bytes, "
                                     "not 40" % clen)
                    # The subformat GUID starts with the plain format code.
                    fmt = (struct.unpack_from("<H", head, 24)[0],) + fmt[1:]
            elif cid == b"data":
                data = (body, min(clen, size - body))
            pos = body + clen + (clen & 1)  # chunks are padded to an even length
        if fmt is None or data is None:
            self._refuse("no %s chunk" % ("fmt" if fmt is None else "data"))
        code, channels, rate, _, align, bits = fmt
        if not ((code == _PCM and bits == 16) or (code == _FLOAT and bits == 32)):
            self._refuse("sample format %d with %d bits" % (code, bits),
                         "supported are " + _SUPPORTED + ": convert the recording")
        if not 1 <= channels <= 8 or rate < 1 or align != channels * bits // 8:
            self._refuse("%d channels at %d Hz, %d bytes per frame" % (channels, rate, align),
                         "record 1 to 8 channels")
        self.rate = rate
        self.channels = channels
        self.frames = data[1] // align
        self._data = data[0]
        self._align = align
        self._scale = 1.0 / 32768 if code == _PCM else 1.0
        self.kind = "h" if code == _PCM else "f"  # array typecode of one sample

    def close(self):
        self._f.close()
