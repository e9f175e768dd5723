"""LIS3DH accelerometer in high-resolution mode, read through its FIFO.

    from vwatch.sensors.lis3dh import LIS3DH
    acc = LIS3DH(machine.I2C(0), rate=1344, range_g=2)
    buf = array("h", [0] * 96)
    n = acc.read_into(buf)        # raw int16 frames x y z; buf[i] * acc.scale is g

High-resolution mode (HR = 1, LPen = 0): 12-bit samples, left-justified in 16 bits, so the raw
values are kept as read (the low 4 bits are 0) and ``scale`` is the 12-bit sensitivity / 16.
FIFO in stream mode: 32 frames, the oldest overwritten when full; FIFO_SRC_REG.OVRN_FIFO says
"full" and ``dropped`` counts what the clock says was overwritten. Poll at least every 32 /
rate seconds (23 ms at 1344 Hz). Facts from ST's datasheet DocID17530 Rev 2 ("LIS3DH"): section
8 (register description, cited by register name), section 3 (the operating-mode table:
sensitivity per mode and range) and section 6.1.1 (I2C: the sub-address MSB enables
auto-increment); FIFO use per ST AN3308.
Allocates 192 bytes of burst buffer and six memoryviews at construction, nothing per read.
"""

from micropython import const

from .i2c_sensor import I2CSensor, exact, pick

_WHO_AM_I = const(0x0F)  # reads 0x33
_ID = const(0x33)
_CTRL_REG1 = const(0x20)  # ODR (bits 7..4), LPen (3), Zen Yen Xen (2..0)
_CTRL_REG4 = const(0x23)  # BDU (7), BLE (6), FS (5..4), HR (3)
_CTRL_REG5 = const(0x24)  # BOOT (7), FIFO_EN (6)
_OUT_X_L = const(0x28)  # X, Y, Z little-endian, left-justified; FIFO reads pop here
_FIFO_CTRL_REG = const(0x2E)  # FM (bits 7..6): 00 bypass, 10 stream; FTH (4..0)
_FIFO_SRC_REG = const(0x2F)  # WTM (7), OVRN_FIFO (6), EMPTY (5), FSS (4..0)

_AUTO_INC = const(0x80)  # sub-address MSB: auto-increment on multi-byte reads
_XYZ = const(0x07)
_HR = const(0x08)
_FIFO_EN = const(0x40)
_BYPASS = const(0x00)  # bypass mode empties the FIFO
_STREAM = const(0x80)
_OVRN = const(0x40)
_EMPTY = const(0x20)

# CTRL_REG1 ODR codes 1..7 and 9 in normal/high-resolution mode (8 is low-power only)
_RATES = (1, 10, 25, 50, 100, 200, 400, 1344)
_ODR_CODES = (1, 2, 3, 4, 5, 6, 7, 9)
# FS codes 0..3 = +-2, 4, 8, 16 g; high-resolution sensitivity 1, 2, 4, 12 mg/digit (12 bits)
_RANGES = (2, 4, 8, 16)
_MG_PER_DIGIT = (1, 2, 4, 12)


class LIS3DH(I2CSensor):
    name = "LIS3DH"
    full_scale = 32752  # 0x7FF0: the largest 12-bit value, left-justified
    _fifo = 32

    def __init__(self, i2c, address=0x18, rate=1344, range_g=2):
        # 0x18 with SA0 (SDO) low, 0x19 with it high (6.1.1)
        odr = pick(rate, _RATES, "rate", "the LIS3DH (high-resolution mode)")
        fs = exact(range_g, _RANGES, "range_g", "the LIS3DH")
        I2CSensor.__init__(self, i2c, address)
        self._check(_WHO_AM_I, (_ID,), "0x18 (SA0 low) or 0x19")
        self._w8(_CTRL_REG1, (_ODR_CODES[odr] << 4) | _XYZ)  # LPen = 0
        self._w8(_CTRL_REG4, (fs << 4) | _HR)
        self._w8(_CTRL_REG5, _FIFO_EN)
        self._w8(_FIFO_CTRL_REG, _BYPASS)
        self._w8(_FIFO_CTRL_REG, _STREAM)
        self.range_g = range_g
        self.scale = _MG_PER_DIGIT[fs] / 16000  # per left-justified 16-bit count
        self._setup(32, _RATES[odr])

    def _level(self):
        src = self._r8(_FIFO_SRC_REG)
        if src & _EMPTY:
            return 0
        if src & _OVRN:
            self._ovr = 0  # OVRN_FIFO: 32 unread frames; the next one overwrites the oldest
            return 32
        return src & 0x1F

    def _burst(self, view):
        # With FIFO_EN the address rolls back from OUT_Z_H (2Dh) to OUT_X_L (28h), so one
        # auto-incremented read of k * 6 bytes pops k frames (AN3308, FIFO section).
        self._rd(_OUT_X_L | _AUTO_INC, view)
