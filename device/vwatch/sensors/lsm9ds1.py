"""LSM9DS1 accelerometer (the IMU of the Arduino Nano 33 BLE Sense), read through its FIFO.

    from machine import I2C
    from array import array
    from vwatch.sensors.lsm9ds1 import LSM9DS1
    imu = LSM9DS1(I2C(1), rate=952, range_g=4)   # imu.rate: the ODR actually chosen
    buf = array("h", [0] * 96)                 # room for 32 frames
    n = imu.read_into(buf)                       # frames read: x0 y0 z0 x1 .. raw int16
    gx = buf[0] * imu.scale                      # g

Only the accelerometer runs (the gyroscope is powered down, which puts the chip in its
accelerometer-only mode with ODRs 10..952 Hz). The FIFO runs in continuous mode: 32 frames, the
oldest overwritten when full, which FIFO_SRC.OVRN reports and ``dropped`` counts. Poll at least
every 32 / rate seconds (34 ms at 952 Hz). Register facts from ST's datasheet DocID025715 Rev 3
("LSM9DS1"), section 7 (register description, cited below by register name) and Table 3 (sensor
characteristics: sensitivity per full scale).
Allocates 192 bytes of burst buffer and six memoryviews at construction, nothing per read.
"""

from micropython import const

from .i2c_sensor import I2CSensor, exact, pick

_WHO_AM_I = const(0x0F)  # reads 0x68 on the accelerometer/gyroscope address
_ID = const(0x68)
_CTRL_REG1_G = const(0x10)  # ODR_G = 000 powers the gyroscope down
_CTRL_REG5_XL = const(0x1F)  # Zen_XL Yen_XL Xen_XL (bits 5..3)
_CTRL_REG6_XL = const(0x20)  # ODR_XL (bits 7..5), FS_XL (bits 4..3), BW bits 2..0
_CTRL_REG8 = const(0x22)  # IF_ADD_INC (bit 2) auto-increments multi-byte reads
_CTRL_REG9 = const(0x23)  # FIFO_EN (bit 1)
_OUT_X_L_XL = const(0x28)  # X, Y, Z little-endian int16; FIFO reads pop here
_FIFO_CTRL = const(0x2E)  # FMODE (bits 7..5): 000 bypass, 110 continuous
_FIFO_SRC = const(0x2F)  # FTH (7), OVRN (6), FSS (5..0) = unread frames, 0..32

_XL_ONLY = const(0x38)  # all three axes on
_INC = const(0x04)  # IF_ADD_INC, the reset default
_FIFO_ON = const(0x02)
_BYPASS = const(0x00)  # bypass mode empties the FIFO
_CONTINUOUS = const(0xC0)
_OVRN = const(0x40)

# CTRL_REG6_XL ODR_XL codes 1..6 in accelerometer-only mode (section 7, CTRL_REG6_XL)
_RATES = (10, 50, 119, 238, 476, 952)
# FS_XL codes 0..3 are +-2, +-16, +-4, +-8 g; Table 3 linear acceleration sensitivity, mg/LSB
_RANGES = (2, 16, 4, 8)
_MG_PER_LSB = (0.061, 0.732, 0.122, 0.244)


class LSM9DS1(I2CSensor):
    name = "LSM9DS1"
    _fifo = 32

    def __init__(self, i2c, address=0x6B, rate=952, range_g=4):
        # 0x6B with SDO_AG high, as on the Nano 33 BLE Sense; 0x6A with it low (Table 19).
        odr = pick(rate, _RATES, "rate", "the LSM9DS1 accelerometer")
        fs = exact(range_g, _RANGES, "range_g", "the LSM9DS1 accelerometer")
        I2CSensor.__init__(self, i2c, address)
        self._check(_WHO_AM_I, (_ID,), "0x6B (SDO_AG high) or 0x6A")
        self._w8(_CTRL_REG8, _INC)
        self._w8(_CTRL_REG1_G, 0)  # gyroscope off: ODR comes from CTRL_REG6_XL
        self._w8(_CTRL_REG5_XL, _XL_ONLY)
        # BW_SCAL_ODR = 0: the anti-aliasing bandwidth follows the ODR
        self._w8(_CTRL_REG6_XL, ((odr + 1) << 5) | (fs << 3))
        self._w8(_CTRL_REG9, _FIFO_ON)
        self._w8(_FIFO_CTRL, _BYPASS)
        self._w8(_FIFO_CTRL, _CONTINUOUS)
        self.range_g = range_g
        self.scale = _MG_PER_LSB[fs] / 1000
        self._setup(32, _RATES[odr])

    def _level(self):
        src = self._r8(_FIFO_SRC)
        if src & _OVRN:
            self._ovr = 1  # OVRN: "at least one sample has been overwritten"
        return src & 0x3F

    def _burst(self, view):
        # With the FIFO on, a multi-byte read rolls back from OUT_Z_H_XL (2Dh) to OUT_X_L_XL
        # (28h), so one read of k * 6 bytes pops k frames (ST's roll-back rule for its
        # output registers; not yet checked on a board, see docs/sensors.md).
        self._rd(_OUT_X_L_XL, view)
