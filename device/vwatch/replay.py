"""A sensor that plays a WAV recording, for the emulated board, tests and benchmarks.

    from vwatch.replay import Replay
    s = Replay("/replay.wav")               # real time: frames become available as time passes
    s = Replay("/rec.wav", speed=4)         # four times faster than recorded
    s = Replay("/rec.wav", speed=0)         # as fast as it is read (never loses a frame)
    s = Replay("/rec.wav", loop=True)       # start again at the end instead of ending
    n = s.read_into(buf, 64)                # like any vwatch sensor (see vwatch.sensor)
    s.ended                                 # True once the recording has been played out

Samples come out as raw int16, as from a chip:
- PCM int16 files exactly as stored, scale 1/32768 (as the host reads them: full scale = 1.0);
- IEEE float32 files quantised to int16 with a per-file scale: the largest finite |x| of the
  file maps to 32767 (scale = max|x| / 32767), a relative error of at most 1.5e-5 of that peak.
  Saturation means nothing there (full_scale is set out of reach). A frame with a NaN or
  infinite sample is delivered alone, as zeros, and counted in ``invalid``, so the ring can
  flag exactly the windows it falls in.
In real time (speed > 0) the recording is a sensor with an unbounded FIFO: what was not read in
time waits, and the ring counts what it cannot hold as dropped (its ``_fifo`` asks the ring for a
hop of slack, as before vwatch.ring sized it by the chip's FIFO).
Costs: the plain 44-byte header (RIFF, a 16-byte fmt chunk, data) is read here; any other goes
through vwatch.wav's parser, 3 KB of code while it reads. float32 files a 1 KB conversion buffer
and the code of vwatch.replayf (loaded only for them).
Reading allocates nothing but, in real time, a boxed float per call (the time bookkeeping).
"""

import struct
import time
from array import array

from micropython import const

from .sensor import Sensor

_CHUNK = const(256)  # float32 samples (all channels) converted per step


def _plain(f):
    # The 44-byte header most writers produce (RIFF, a 16-byte fmt chunk, then the data
    # chunk) of a file vwatch.wav would accept, read here: its parser is 3 KB of heap, which a
    # second run() (after Ctrl-C, with the first run's buffers kept) does not have. (rate,
    # channels, frames, data offset, bytes per frame, float32?) or None.
    h = f.read(44)
    if len(h) < 44 or h[0:4] != b"RIFF" or h[8:16] != b"WAVEfmt " or h[36:40] != b"data":
        return None
    n, code, c, rate, _, align, bits = struct.unpack_from("<IHHIIHH", h, 16)
    if n != 16 or not ((code == 1 and bits == 16) or (code == 3 and bits == 32)):  # PCM, float
        return None
    if not 1 <= c <= 8 or rate < 1 or align != c * bits // 8:
        return None
    n = min(struct.unpack_from("<I", h, 40)[0], f.seek(0, 2) - 44)
    return rate, c, n // align, 44, align, code == 3


class Replay(Sensor):
    name = "replay"

    def __init__(self, path, speed=1.0, loop=False):
        f = open(path, "rb")
        try:
            got = _plain(f)
        except Exception:
            f.close()
            raise
        if got is None:  # any other layout, or a file to refuse: vwatch.wav says why
            f.close()
            from .wav import Wav

            w = Wav(path)  # validates the header; its file object is reused below
            f = w._f
            got = (w.rate, w.channels, w.frames, w._data, w._align, w.kind == "f")
            w = None
        self.path = path
        self._f = f
        rate, self.channels, self.frames, self._data, self._align, self._float = got
        self.rate = float(rate)
        self.speed = speed
        self.loop = loop
        self.realtime = speed > 0
        # In real time the file is a FIFO without bound, so the ring gets its largest slack (a
        # hop, up to a window): the emulated board shares its CPU with the host, and a window
        # that comes late there is not a board's fault.
        if self.realtime:  # (an instance attribute only here: one more slot moved the heap)
            self._fifo = 0x3FFF
        self.exact_rate = True  # the file's rate: `vwatch.record` reports it, not a measurement
        self.ended = False
        self.dropped = 0
        self.errors = 0
        self.invalid = 0  # frames with NaN or infinite samples
        self.pos = 0  # next frame of the file
        self.played = 0  # frames delivered since start
        if self._float:
            from . import replayf  # float files only: int16 recordings never load its code

            self._rf = replayf
            self._fbuf = array("f", range(max(1, _CHUNK // self.channels) * self.channels))
            self._fmv = memoryview(self._fbuf)
            peak = replayf.peak(self)
            self.scale = peak / 32767 if peak > 0 else 1.0 / 32768
            self._inv = 1.0 / self.scale
            self.full_scale = 32768  # out of reach: no saturation flag on float recordings
        else:
            self.scale = 1.0 / 32768
            self.full_scale = 32767
        self._per_us = self.rate * speed / 1000000
        self._frac = 0.0
        self._due = 0  # frames that time has made available and were not read yet
        self._last = time.ticks_us()

    def __repr__(self):
        return "<Replay %s: %d ch at %g Hz x%g, frame %d of %d%s>" % (
            self.path, self.channels, self.rate, self.speed, self.pos, self.frames,
            ", looping" if self.loop else "")

    def restart(self):
        """Play again from the first frame."""
        self.pos = 0
        self.ended = False
        self._frac = 0.0
        self._due = 0
        self._last = time.ticks_us()

    def read_into(self, buf, max_frames=None):
        c = self.channels
        k = len(buf) // c if max_frames is None else max_frames
        if self.realtime:  # frames whose time has come since the last call
            now = time.ticks_us()
            self._frac += time.ticks_diff(now, self._last) * self._per_us
            self._last = now
            whole = int(self._frac)
            self._frac -= whole
            self._due += whole
            if k > self._due:
                k = self._due
        if self.pos >= self.frames:
            if not self.loop:
                self.ended = True
                return 0
            self.pos = 0
        if k > self.frames - self.pos:
            k = self.frames - self.pos
        if k <= 0:
            return 0
        f = self._f
        f.seek(self._data + self.pos * self._align)
        if self._float:
            k = self._rf.read_float(self, buf, k)
        else:
            # readinto a view: slicing an array would read into a copy
            k = f.readinto(buf if len(buf) == k * c else memoryview(buf)[: k * c]) // self._align
        self.pos += k
        self.played += k
        if self.realtime:
            self._due -= k
        return k

    def close(self):
        self._f.close()

