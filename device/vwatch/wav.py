"""Stream one channel of a WAV recording into a float array, a few frames at a time.

    from vwatch.wav import Wav
    w = Wav("/rec.wav")              # w.rate, w.channels, w.frames
    x = array("f", range(256))
    w.read(2, 1024, 256, x)          # channel 2, frames 1024..1279, as floats into x
    w.close()

Reads RIFF/WAVE with PCM int16 (format 1, scaled by 1/32768) or IEEE float32 (format 3, as
stored), also inside WAVE_FORMAT_EXTENSIBLE, 1 to 8 channels; other chunks are skipped.
Costs: one chunk buffer of about 256 samples (1 KB), made by the first `read`, which then
allocates nothing beyond boxed floats (on ports that box them). ``out`` may be any float
container that takes item assignment (array('f'), a ulab ndarray). `read_raw` hands out the
stored bytes of all channels, for callers that convert in C (ulab.utils.from_int16_buffer).
"""

import struct
from array import array

import micropython
from micropython import const

_PCM = const(1)
_FLOAT = const(3)
_EXTENSIBLE = const(0xFFFE)
_CHUNK = const(256)  # samples (all channels) per readinto
_SUPPORTED = "PCM int16 (format 1, 16 bits) or IEEE float32 (format 3, 32 bits)"


class WavError(ValueError):
    """A recording that cannot be read; the message names the file, the problem and a fix."""


@micropython.native
def _pick(buf, first, step, count, out, pos, scale):
    # out[pos + j] = buf[first + j * step] * scale: one channel out of interleaved frames.
    i = first
    for j in range(pos, pos + count):
        out[j] = buf[i] * scale
        i += step


class Wav:
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
        self._buf = None  # made by the first read(): read_raw callers never need it

    def __repr__(self):
        return "<Wav %s: %d Hz, %d channels, %d frames>" % (
            self.path, self.rate, self.channels, self.frames)

    def read(self, ch, start, n, out):
        """Put frames [start, start + n) of channel ``ch`` into out[0..n) as floats."""
        if start < 0 or start + n > self.frames:
            raise ValueError("%s: frames %d..%d requested, the recording has %d"
                             % (self.path, start, start + n, self.frames))
        c = self.channels
        if self._buf is None:
            self._buf = array(self.kind, range(max(1, _CHUNK // c) * c))
            self._mv = memoryview(self._buf)
        per = len(self._buf) // c
        f = self._f
        f.seek(self._data + start * self._align)
        pos = 0
        while pos < n:
            k = min(per, n - pos)
            f.readinto(self._mv[: k * c])
            _pick(self._buf, ch, c, k, out, pos, self._scale)
            pos += k

    def read_raw(self, start, k, mv):
        """Read frames [start, start + k) of all channels, interleaved, as stored (``kind``)
        into the writable memoryview ``mv``; return the number of bytes read."""
        self._f.seek(self._data + start * self._align)
        return self._f.readinto(mv[: k * self._align])

    def close(self):
        self._f.close()
