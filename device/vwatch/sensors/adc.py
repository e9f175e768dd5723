"""One analog channel (a piezo or an analog accelerometer) read with machine.ADC.read_u16.

    from vwatch.sensors.adc import Analog
    s = Analog(machine.ADC(26), rate=2000)                     # paced by the caller's polls
    s = Analog(machine.ADC(26), rate=2000, timer=machine.Timer(0))   # paced by a timer
    buf = array("h", [0] * 256)
    n = s.read_into(buf)          # centred counts; buf[i] * s.scale is volts (or g)

An ADC has no FIFO. With ``timer=`` a timer callback at ``rate`` stores one sample per tick in
a ring of ``depth`` samples (with one writer and one reader index, so no lock) that
``read_into`` drains; a full ring drops the new sample and counts it. Without a timer the
caller is the clock: each ``read_into`` takes one sample if a sample instant has passed since
the last one, and counts the instants it missed (late polls) as ``dropped``. read_u16 gives
0..65535 whatever the ADC's resolution; vwatch stores it centred, ``read_u16() - 32768``, so
the int16 buffer and ``full_scale`` work as for the IMUs. ``scale`` is vref / 65536 volts per
count, or g per count when ``sensitivity`` (V/g) is given.
Allocates the ring (2 bytes a sample) at construction, nothing per read or per tick.
"""

from array import array
from time import ticks_add, ticks_diff, ticks_us

from ..sensor import Sensor


class Analog(Sensor):
    name = "ADC"
    channels = 1
    full_scale = 32767

    def __init__(self, adc, rate=1000, vref=3.3, sensitivity=None, timer=None, depth=256):
        if not isinstance(rate, (int, float)) or rate <= 0:
            raise ValueError("rate=%r: the ADC sample rate must be a positive number of Hz"
                             % (rate,))
        if sensitivity is not None and sensitivity <= 0:
            raise ValueError("sensitivity=%r: give volts per g (> 0), or None for volts"
                             % (sensitivity,))
        if not hasattr(adc, "read_u16"):
            from machine import ADC, Pin  # a pin number or name: make the ADC here

            adc = ADC(Pin(adc))
        self.adc = adc
        self.vref = vref
        self.scale = vref / 65536 / (sensitivity or 1)
        self.dropped = 0
        self.errors = 0
        self._timer = timer
        if timer is not None:
            self.rate = float(int(rate + 0.5))  # timers take integral frequencies
            # one writer (the callback moves _tail), one reader (read_into moves _head):
            # no read-modify-write shared between them, so no lock is needed
            self._ring = array("h", [0] * (depth + 1))
            self._head = 0
            self._tail = 0
            self._tick = self._on_tick  # one bound method, made here and not per tick
            timer.init(freq=int(self.rate), callback=self._tick)
        else:
            self.rate = float(rate)
            self._period = int(1000000 / rate + 0.5)  # us
            self._next = ticks_us()

    def _on_tick(self, _t):
        # Timer callback (may run as an interrupt): no allocation, no exceptions.
        t = self._tail + 1
        if t == len(self._ring):
            t = 0
        if t == self._head:
            self.dropped += 1  # ring full: the caller polled too late
            return
        self._ring[self._tail] = self.adc.read_u16() - 32768
        self._tail = t

    def read_into(self, buf, max_frames=None):
        n = len(buf)
        if max_frames is not None and max_frames < n:
            n = max_frames
        if self._timer is None:
            if n == 0:
                return 0
            late = ticks_diff(ticks_us(), self._next)
            if late < 0:
                return 0  # the next sample instant has not come yet
            missed = late // self._period
            self.dropped += missed
            self._next = ticks_add(self._next, (missed + 1) * self._period)
            buf[0] = self.adc.read_u16() - 32768
            return 1
        ring = self._ring
        size = len(ring)
        h = self._head
        t = self._tail  # the callback may add more meanwhile; they wait for the next call
        j = 0
        while j < n and h != t:
            buf[j] = ring[h]
            j += 1
            h += 1
            if h == size:
                h = 0
        self._head = h
        return j

    def close(self):
        if self._timer is not None:
            self._timer.deinit()
