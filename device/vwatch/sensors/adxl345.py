"""ADXL345 accelerometer in full-resolution mode, read through its FIFO.

    from vwatch.sensors.adxl345 import ADXL345
    acc = ADXL345(machine.I2C(0), rate=800, range_g=16)
    buf = array("h", [0] * 96)
    n = acc.read_into(buf)        # raw int16 frames x y z; buf[i] * acc.scale is g

FULL_RES = 1: 3.9 mg per count in every range (10 bits at +-2 g up to 13 bits at +-16 g),
right-justified, sign-extended. FIFO in stream mode: 32 entries, the oldest overwritten when
full; INT_SOURCE.Overrun then says "full" and ``dropped`` counts what the clock says was
overwritten. The ADXL345 pops one FIFO entry per read of DATAX0..DATAZ1 and does not roll the
address back, so each frame is its own 6-byte read. Facts from Analog Devices' datasheet
"ADXL345" Rev. G: Table 1 (scale factor), the register map and Register Definitions, section
FIFO (modes, entries, the 5 us between reads that the I2C address phase provides).
Allocates one 6-byte buffer at construction, nothing per read.
"""

from micropython import const

from .i2c_sensor import I2CSensor, exact, pick

_DEVID = const(0x00)  # reads 0xE5
_ID = const(0xE5)
_BW_RATE = const(0x2C)  # LOW_POWER (4), Rate (3..0)
_POWER_CTL = const(0x2D)  # Measure (3)
_INT_SOURCE = const(0x30)  # DATA_READY (7), Watermark (1), Overrun (0): set even if unmapped
_DATA_FORMAT = const(0x31)  # FULL_RES (3), Justify (2), Range (1..0)
_DATAX0 = const(0x32)  # X, Y, Z little-endian; reading DATAZ1 pops the FIFO
_FIFO_CTL = const(0x38)  # FIFO_MODE (7..6): 00 bypass, 10 stream; Samples (4..0)
_FIFO_STATUS = const(0x39)  # FIFO_TRIG (7), Entries (5..0)

_MEASURE = const(0x08)
_FULL_RES = const(0x08)
_BYPASS = const(0x00)  # bypass mode empties the FIFO
_STREAM = const(0x80 | 16)  # stream mode, watermark at 16 entries (not used for interrupts)
_OVERRUN = const(0x01)

# BW_RATE Rate codes 6..15: 6.25 .. 3200 Hz, doubling (the data-rate table, normal power)
_RATES = (6.25, 12.5, 25, 50, 100, 200, 400, 800, 1600, 3200)
_RANGES = (2, 4, 8, 16)  # DATA_FORMAT Range codes 0..3
_G_PER_LSB = 0.0039  # Table 1, scale factor at full resolution, all g ranges


class ADXL345(I2CSensor):
    name = "ADXL345"
    _fifo = 32

    def __init__(self, i2c, address=0x53, rate=800, range_g=16):
        # 0x53 with ALT ADDRESS low, 0x1D with it high (Serial Communications, I2C)
        odr = pick(rate, _RATES, "rate", "the ADXL345")
        fs = exact(range_g, _RANGES, "range_g", "the ADXL345")
        I2CSensor.__init__(self, i2c, address)
        self._check(_DEVID, (_ID,), "0x53 (ALT ADDRESS low) or 0x1D")
        self._w8(_POWER_CTL, 0)  # standby while configuring
        self._w8(_BW_RATE, odr + 6)
        self._w8(_DATA_FORMAT, _FULL_RES | fs)
        self._w8(_FIFO_CTL, _BYPASS)
        self._w8(_FIFO_CTL, _STREAM)
        self._w8(_POWER_CTL, _MEASURE)
        self.range_g = range_g
        self.scale = _G_PER_LSB
        self.full_scale = (256 << fs) - 1  # 10 + fs bits, signed
        self._setup(1, _RATES[odr])

    def _level(self):
        if self._r8(_INT_SOURCE) & _OVERRUN:
            self._ovr = 0  # in FIFO modes Overrun means "FIFO filled"
        return self._r8(_FIFO_STATUS) & 0x3F

    def _burst(self, view):
        self._rd(_DATAX0, view)  # one entry: 6 bytes
