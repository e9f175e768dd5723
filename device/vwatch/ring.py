"""The sample ring: raw int16 frames from a sensor, handed to a feature backend window by window.

    from vwatch.ring import Ring
    r = Ring(channels=3, window=256, hop=128, scale=imu.scale)
    r.fill(imu)                      # read what the sensor has, without blocking
    if r.ready():
        fe.compute(r, 0)             # the backend calls r.read(ch, 0, 256, out): floats in g
        r.advance()                  # on to the next window (hop frames later)

Frames are stored interleaved (x0 y0 z0 x1 ...) as the sensor delivers them, in
``frames`` >= window slots; the default is window + min(hop, window, max(256, fifo)): a window,
plus the frames a sensor hands over in one poll (``fifo``: its chip FIFO's depth, at least 256)
up to a hop. More slots buy nothing: the loop reads the sensor only between windows, so what
arrives while a window is computed waits in the sensor's own FIFO, which bounds the backlog
one fill() can store; and a ring of 2N frames at hop N would cost 32 KB for 8 x 1024 frames.
Positions given to
read/read_raw count from the start of the current window. With hop > window (duty cycling) the
frames between two windows are read from the sensor into a small spill buffer and thrown away:
they are skipped on purpose and are not counted as dropped.

Overflow: `fill` drains the sensor. When the ring is full (processing fell behind the sensor)
the frames that do not fit are read into the spill buffer, thrown away and counted in
``dropped`` (frames, one sample per channel). A sensor with ``realtime = False`` (a replay
running as fast as it is read) is never drained past a full ring: nothing is lost by waiting.
Invalid input (NaN or infinite samples, which int16 cannot hold) is signalled by a sensor that
counts it in ``invalid``, delivering such a frame on its own (as zeros): the ring remembers
which windows it falls in, see `tainted`.

Costs: 2 * channels * frames bytes for the ring, 2 * channels * 32 for the spill buffer, two
memoryviews; `fill` allocates a memoryview per sensor read, `read` and `advance` nothing (the
kernels are native code), nor does `read_int16` (raw samples of one channel, for the q15
backend). `kind = "h"` with `read_raw` (where uctypes gives a byte view of
the ring) lets the ulab backend convert raw frames in C and scale them by ``scale`` itself.
"""

from array import array

import micropython
from micropython import const

_SPILL = const(32)  # frames per throw-away read
_SLACK = const(256)  # frames beyond the window, at least (see the module doc)
_NONE = const(0x3FFFFFFF)  # "no invalid frame" position; a small int on every port


@micropython.native
def _pick(buf, first, step, count, out, pos, scale):
    # out[pos + j] = buf[first + j * step] * scale: one channel out of interleaved frames.
    i = first
    for j in range(pos, pos + count):
        out[j] = buf[i] * scale
        i += step


@micropython.viper
def _pick16(buf: ptr16, out: ptr16, at: int, span: int):
    # out[pos + j] = buf[first + j * step] as raw int16, j < count, into any buffer (the q15
    # backend's float array): at = first | step << 20, span = count | pos << 13 (4 arguments,
    # viper's limit on older firmware).
    i = at & 0xFFFFF
    step = at >> 20
    pos = span >> 13
    for j in range(pos, pos + (span & 0x1FFF)):
        out[j] = buf[i]
        i += step


@micropython.viper
def _peak(buf: ptr16, a: int, b: int) -> int:
    # max |buf[i]| for a <= i < b (int16 samples). Viper, not native: a native loop
    # subscripts the array through the runtime, 2.2 M instructions per 8 x 1024 window on
    # Cortex-M7. A while loop two samples a turn: viper's `for i in range` cost 10 more
    # instructions a sample (415 k against 280 k a seed window on the M7). Only a negative
    # sample is masked to its 16 bits: right whichever way the port extends a ptr16 load.
    m = 0
    b -= 1
    while a < b:
        v = buf[a]
        if v & 0x8000:
            v = 0x10000 - (v & 0xFFFF)
        if v > m:
            m = v
        v = buf[a + 1]
        if v & 0x8000:
            v = 0x10000 - (v & 0xFFFF)
        if v > m:
            m = v
        a += 2
    if a == b:  # an odd count: the last sample
        v = buf[a]
        if v & 0x8000:
            v = 0x10000 - (v & 0xFFFF)
        if v > m:
            m = v
    return m


def default_frames(window, hop, fifo=0):
    """The ring's frames when not given: a window plus what one poll of a sensor with a FIFO
    of ``fifo`` frames hands over, up to a hop (see the module doc)."""
    return window + min(hop, window, max(_SLACK, fifo))


class Ring:
    def __init__(self, channels, window, hop, scale=1.0 / 32768, frames=None, fifo=0,
                 buf=None):
        if buf is not None:  # frames allocated earlier (vwatch.start: before the model)
            frames = len(buf) // channels
        elif frames is None:
            frames = default_frames(window, hop, fifo)
        if frames < window:
            raise ValueError("a ring of %d frames cannot hold a window of %d" % (frames, window))
        self.channels = channels
        self.window = window
        self.hop = hop
        self.cap = frames
        # Allocation, once: the ring, its views, the spill buffer. From a range, not from
        # bytes(...), so no temporary copy doubles the peak; every slot is written before use.
        self.buf = buf if buf is not None else array("h", range(channels * frames))
        self.mv = memoryview(self.buf)
        self.spill = array("h", range(channels * _SPILL))
        self.raw = None  # a byte view of buf, for read_raw
        self.set_scale(scale)
        self.reset()

    def set_scale(self, scale):
        """Units per raw count (the sensor's ``scale``)."""
        self.scale = scale
        self.kind = None
        try:
            import uctypes

            if self.raw is None:
                self.raw = memoryview(uctypes.bytearray_at(uctypes.addressof(self.buf),
                                                           2 * len(self.buf)))
            self.kind = "h"
        except (ImportError, AttributeError):  # no byte view: backends use read()
            pass

    def reset(self):
        self.head = 0  # ring slot of the current window's first frame
        self.count = 0  # frames stored from head on
        self.skip = 0  # frames still to throw away before the next window (hop > window)
        self.dropped = 0  # frames lost to a full ring since start
        self.bad_lo = _NONE  # frames [bad_lo, bad_hi) from head held invalid samples
        self.bad_hi = -_NONE
        self.invalid = 0  # the sensor's invalid count when last read

    def __repr__(self):
        return "<Ring %d ch, %d frames, window %d hop %d: %d stored, %d dropped>" % (
            self.channels, self.cap, self.window, self.hop, self.count, self.dropped)

    def ready(self):
        """True when the current window is complete."""
        return self.count >= self.window

    def fill(self, sensor):
        """Read what the sensor has; return the frames stored."""
        c = self.channels
        cap = self.cap
        stored = 0
        while True:
            if self.skip:  # duty cycling: frames between windows
                k = min(self.skip, _SPILL)
                got = sensor.read_into(self.spill, k)
                self.skip -= got
                if got < k:
                    return stored
                continue
            free = cap - self.count
            if free == 0:
                if not getattr(sensor, "realtime", True):
                    return stored
                got = sensor.read_into(self.spill, _SPILL)  # overflow: lose the newest
                self.dropped += got
                if got < _SPILL:
                    return stored
                continue
            w = self.head + self.count
            if w >= cap:
                w -= cap
            k = min(free, cap - w)  # contiguous free slots
            got = sensor.read_into(self.mv[w * c : (w + k) * c], k)
            if got:
                inv = getattr(sensor, "invalid", 0)
                if inv != self.invalid:  # a frame of invalid samples (delivered alone)
                    self.invalid = inv
                    if self.count < self.bad_lo:
                        self.bad_lo = self.count
                    self.bad_hi = self.count + got
                self.count += got
                stored += got
            if got < k:
                return stored

    def advance(self):
        """Move on to the next window (hop frames later)."""
        h = self.hop
        if self.count >= h:
            self.count -= h
            self.head += h
            if self.head >= self.cap:
                self.head -= self.cap
        else:  # hop > frames stored: the rest of the gap is skipped as it arrives
            self.skip = h - self.count
            self.head += self.count
            if self.head >= self.cap:
                self.head -= self.cap
            self.count = 0
        self.bad_lo -= h
        self.bad_hi -= h
        if self.bad_hi <= 0:
            self.bad_lo = _NONE
            self.bad_hi = -_NONE

    def tainted(self):
        """True when the current window holds a frame the sensor flagged invalid."""
        return self.bad_lo < self.window and self.bad_hi > 0

    def peak(self):
        """The largest |raw sample| of the current window (all channels)."""
        c = self.channels
        a = self.head * c
        end = a + self.window * c
        top = self.cap * c
        if end <= top:
            return _peak(self.buf, a, end)
        return max(_peak(self.buf, a, top), _peak(self.buf, 0, end - top))

    def read(self, ch, start, n, out):
        """Put frames [start, start + n) of the current window's channel ``ch`` into
        out[0..n) as floats (raw * scale)."""
        c = self.channels
        i = self.head + start
        if i >= self.cap:
            i -= self.cap
        k = min(n, self.cap - i)
        _pick(self.buf, i * c + ch, c, k, out, 0, self.scale)
        if k < n:
            _pick(self.buf, ch, c, n - k, out, k, self.scale)

    def at(self, ch, start):
        """The index in ``buf`` of channel ``ch``'s sample of the window's frame ``start``:
        its next samples follow ``channels`` apart, wrapping at len(buf) (the q15 backend
        gathers them in its own conversion pass, q15_spectrum.iconv)."""
        i = self.head + start
        if i >= self.cap:
            i -= self.cap
        return i * self.channels + ch

    def read_int16(self, ch, start, n, out):
        """Put frames [start, start + n) of channel ``ch`` into out as raw int16 samples, in
        its first 2n bytes whatever its type (the q15 backend's path: no float, no heap)."""
        c = self.channels
        i = self.head + start
        if i >= self.cap:
            i -= self.cap
        k = min(n, self.cap - i)
        _pick16(self.buf, out, (i * c + ch) | c << 20, k)
        if k < n:
            _pick16(self.buf, out, ch | c << 20, (n - k) | k << 13)

    def read_raw(self, start, k, mv):
        """Copy frames [start, start + k) of all channels, interleaved int16, into the byte
        memoryview ``mv``; return the number of bytes (the ulab backend's fast path)."""
        b = 2 * self.channels
        i = self.head + start
        if i >= self.cap:
            i -= self.cap
        j = min(k, self.cap - i)
        mv[: j * b] = self.raw[i * b : (i + j) * b]
        if j < k:
            mv[j * b : k * b] = self.raw[: (k - j) * b]
        return k * b
