"""Stream one channel of a WAV recording into a float array, a few frames at a time.

    from vwatch.wav import Wav
    w = Wav("/rec.wav")              # w.rate, w.channels, w.frames
    x = array("f", range(256))
    w.read(2, 1024, 256, x)          # channel 2, frames 1024..1279, as floats into x
    w.close()

Reads what vwatch.wav_header accepts: PCM int16 (scaled by 1/32768) or IEEE float32 (as
stored), 1 to 8 channels; its WavError is also this module's.
Costs: one chunk buffer of about 256 samples (1 KB), made by the first `read`, which then
allocates nothing beyond boxed floats (on ports that box them). ``out`` may be any float
container that takes item assignment (array('f'), a ulab ndarray). `read_raw` hands out the
stored bytes of all channels, for callers that convert in C (ulab.utils.from_int16_buffer).
"""

from array import array

import micropython
from micropython import const

from .wav_header import WavError, WavHeader  # noqa: F401 (WavError: callers catch it here)

_CHUNK = const(256)  # samples (all channels) per readinto


@micropython.native
def _pick(buf, first, step, count, out, pos, scale):
    # out[pos + j] = buf[first + j * step] * scale: one channel out of interleaved frames.
    i = first
    for j in range(pos, pos + count):
        out[j] = buf[i] * scale
        i += step


class Wav(WavHeader):
    def __init__(self, path):
        WavHeader.__init__(self, path)
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
