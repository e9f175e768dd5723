"""What vwatch's I2C accelerometer drivers share (one copy in flash for all of them).

Bus retries, the chip check with a readable error, FIFO bursts into one preallocated buffer and
the count of frames the chip overwrote. A driver subclass sets ``_frame`` (bytes per frame),
``_fifo`` (frames the chip can hold), ``_be`` (big-endian data), calls ``_setup(chunk)`` and
implements ``_level()`` (frames waiting; sets ``_ovr`` when the chip flagged an overrun) and
``_burst(view)`` (read ``len(view)`` bytes of whole frames out of the FIFO).

Allocation: ``_setup`` makes one bytearray of ``chunk`` frames and memoryviews of 1, 2, 4, ..
``chunk`` frames of it; ``read_into`` then reads the level and as few bursts as the count's
binary digits, converting with integer arithmetic. Nothing is allocated per read on 64-bit
ports; on 32-bit ports only the lost-frame estimate after an overrun may make a big int.
"""

import micropython
from micropython import const
from time import ticks_diff, ticks_us

from ..sensor import Sensor

_RETRIES = const(2)  # a failed transfer is tried again this many times, then re-raised


class SensorNotFound(OSError):
    """No (or the wrong) chip answers; the message lists what an I2C scan sees."""


def pick(value, options, setting, name):
    """Index of the supported option nearest to ``value``; a tie goes to the faster rate."""
    if not isinstance(value, (int, float)) or value <= 0:
        raise ValueError("%s=%r: %s needs a positive number; it supports %s"
                         % (setting, value, name, _join(options)))
    best = 0
    for i in range(len(options)):
        if abs(options[i] - value) <= abs(options[best] - value):
            best = i
    return best


def exact(value, options, setting, name):
    """Index of ``value`` in ``options``; a full-scale range is never rounded silently."""
    for i in range(len(options)):
        if options[i] == value:
            return i
    raise ValueError("%s=%r: %s supports %s" % (setting, value, name, _join(options)))


def _join(options):
    return ", ".join(["%g" % o for o in options])


@micropython.native
def _le16(raw, nbytes, buf, j):
    # little-endian int16 pairs -> buf[j..]
    i = 0
    while i < nbytes:
        v = raw[i] | (raw[i + 1] << 8)
        buf[j] = v - 65536 if v & 0x8000 else v
        i += 2
        j += 1


@micropython.native
def _be16(raw, nbytes, buf, j):
    # big-endian int16 pairs -> buf[j..]
    i = 0
    while i < nbytes:
        v = (raw[i] << 8) | raw[i + 1]
        buf[j] = v - 65536 if v & 0x8000 else v
        i += 2
        j += 1


class I2CSensor(Sensor):
    channels = 3
    _frame = 6
    _fifo = 32
    _be = False

    def __init__(self, i2c, address):
        self.i2c = i2c
        self.address = address
        self.dropped = 0
        self.errors = 0
        self._b1 = bytearray(1)
        self._b2 = bytearray(2)
        self._ovr = -1
        self._left = 0
        self._t = ticks_us()
        self._mhz = 0

    def _setup(self, chunk, rate):
        # Buffers for bursts of 1, 2, 4, .. chunk frames, made once (a memoryview slice made
        # in read_into would allocate).
        self.rate = rate
        self._mhz = int(rate * 1000 + 0.5)
        self._raw = bytearray(self._frame * chunk)
        mv = memoryview(self._raw)
        views = []
        n = 1
        while n <= chunk:
            views.append(mv[: n * self._frame])
            n *= 2
        self._views = tuple(views)
        self._t = ticks_us()
        self._left = 0

    # -- bus access: retried, counted, then re-raised ------------------------------------
    def _rd(self, reg, buf):
        tries = 0
        while True:
            try:
                self.i2c.readfrom_mem_into(self.address, reg, buf)
                return
            except OSError:
                if tries == _RETRIES:
                    raise
                tries += 1
                self.errors += 1

    def _wr(self, reg, data):
        tries = 0
        while True:
            try:
                self.i2c.writeto_mem(self.address, reg, data)
                return
            except OSError:
                if tries == _RETRIES:
                    raise
                tries += 1
                self.errors += 1

    def _r8(self, reg):
        self._rd(reg, self._b1)
        return self._b1[0]

    def _w8(self, reg, value):
        self._b1[0] = value
        self._wr(reg, self._b1)

    def _check(self, reg, ids, hint=""):
        """Read the id register; raise SensorNotFound naming what the bus has instead."""
        try:
            got = self._r8(reg)
        except OSError:
            got = None
        self.errors = 0
        if got in ids:
            return got
        try:
            seen = ", ".join(["0x%02x" % a for a in self.i2c.scan()]) or "no devices"
        except OSError as e:
            seen = "nothing (the scan failed: %r)" % (e,)
        if got is None:
            what = "nothing answers at I2C address 0x%02x" % self.address
        else:
            what = "the chip at 0x%02x has id 0x%02x in register 0x%02x, not %s" % (
                self.address, got, reg, " or ".join(["0x%02x" % i for i in ids]))
        raise SensorNotFound("%s not found: %s. An I2C scan sees: %s. Check the wiring, the "
                             "power and address=%s." % (self.name, what, seen, hint))

    # -- the FIFO read every driver shares ------------------------------------------------
    def read_into(self, buf, max_frames=None):
        ch = self.channels
        n = len(buf) // ch
        if max_frames is not None and max_frames < n:
            n = max_frames
        t = ticks_us()
        self._ovr = -1
        level = self._level()
        if self._ovr >= 0:
            # Frames made since the last poll that the FIFO could not keep were overwritten;
            # the flag alone cannot say how many, the clock can.
            made = (ticks_diff(t, self._t) * self._mhz + 500000000) // 1000000000
            lost = self._left + made - level
            self.dropped += lost if lost > self._ovr else self._ovr
        if level < n:
            n = level
        views = self._views
        k = len(views) - 1
        j = 0
        left = n
        while left:
            while (1 << k) > left:
                k -= 1
            v = views[k]
            self._burst(v)
            if self._be:
                _be16(self._raw, len(v), buf, j)
            else:
                _le16(self._raw, len(v), buf, j)
            j += ch << k
            left -= 1 << k
        self._t = t
        self._left = level - n
        return n
