"""MPU-6050 accelerometer, read through its FIFO.

    from vwatch.sensors.mpu6050 import MPU6050
    imu = MPU6050(machine.I2C(0), rate=1000, range_g=4)
    buf = array("h", [0] * 96)
    n = imu.read_into(buf)        # raw int16 frames x y z; buf[i] * imu.scale is g

The digital low-pass filter is on, so the sample rate is 1 kHz / (1 + SMPLRT_DIV): 1000, 500,
333.3, 250, 200 .. 3.9 Hz; the filter's bandwidth is set to the widest one below half that rate.
Only the accelerometer feeds the 1024-byte FIFO (170 frames, big-endian). After an overflow the
oldest *bytes* are gone and frames no longer start at a 6-byte boundary (1024 is not a multiple
of 6), so the driver resets the FIFO and counts what it held and what was overwritten as
``dropped``. Poll at least every 170 / rate seconds (0.17 s at 1 kHz). Facts from InvenSense's
"MPU-6000 and MPU-6050 Register Map and Descriptions" RM-MPU-6000A-00 Rev 4.2 (cited by register
number) and the Product Specification PS-MPU-6000A-00 Rev 3.4 (FIFO, I2C address).
Allocates 192 bytes of burst buffer and six memoryviews at construction, nothing per read.
"""

from micropython import const

from .i2c_sensor import I2CSensor, exact

_SMPLRT_DIV = const(0x19)  # Register 25: rate = gyroscope output rate / (1 + div)
_CONFIG = const(0x1A)  # Register 26: DLPF_CFG (2..0); 1..6 make the gyroscope rate 1 kHz
_ACCEL_CONFIG = const(0x1C)  # Register 28: AFS_SEL (4..3)
_FIFO_EN = const(0x23)  # Register 35: ACCEL_FIFO_EN (3)
_INT_ENABLE = const(0x38)  # Register 56: FIFO_OFLOW_EN (4)
_INT_STATUS = const(0x3A)  # Register 58: FIFO_OFLOW_INT (4), cleared by reading
_USER_CTRL = const(0x6A)  # Register 106: FIFO_EN (6), FIFO_RESET (2)
_PWR_MGMT_1 = const(0x6B)  # Register 107: SLEEP (6) set at power-up; CLKSEL (2..0)
_FIFO_COUNTH = const(0x72)  # Registers 114-115: bytes in the FIFO, big-endian
_FIFO_R_W = const(0x74)  # Register 116: reading pops the FIFO (no auto-increment)
_WHO_AM_I = const(0x75)  # Register 117: reads 0x68 whatever AD0 is
_ID = const(0x68)

_CLK_PLL_X = const(0x01)  # awake, clock from the X gyroscope PLL (recommended over 8 MHz RC)
_ACCEL_FIFO = const(0x08)
_OFLOW = const(0x10)
_FIFO_ON = const(0x40)
_FIFO_RESET = const(0x04)
_FIFO_BYTES = const(1024)

_RANGES = (2, 4, 8, 16)  # AFS_SEL 0..3; sensitivity 16384 LSB/g halving per step (Reg 59-64)
_DLPF_HZ = (184, 94, 44, 21, 10, 5)  # accelerometer bandwidth for DLPF_CFG 1..6 (Register 26)


class MPU6050(I2CSensor):
    name = "MPU6050"
    _fifo = _FIFO_BYTES // 6
    _be = True

    def __init__(self, i2c, address=0x68, rate=1000, range_g=4):
        # 0x68 with AD0 low, 0x69 with it high (Product Specification, I2C interface)
        if not isinstance(rate, (int, float)) or rate <= 0:
            raise ValueError("rate=%r: the MPU6050 needs a positive number; it runs at "
                             "1000 / (1 + d) Hz for d = 0..255 (1000 down to 3.9)" % (rate,))
        fs = exact(range_g, _RANGES, "range_g", "the MPU6050")
        div = int(1000 / rate + 0.5) - 1
        div = 0 if div < 0 else 255 if div > 255 else div
        for d in (div - 1, div + 1):  # the divider is integral: take the nearest rate
            if 0 <= d <= 255 and abs(1000 / (1 + d) - rate) < abs(1000 / (1 + div) - rate):
                div = d
        actual = 1000 / (1 + div)
        cfg = 6
        for i in range(len(_DLPF_HZ)):  # widest anti-aliasing bandwidth below Nyquist
            if _DLPF_HZ[i] < actual / 2:
                cfg = i + 1
                break
        I2CSensor.__init__(self, i2c, address)
        self._check(_WHO_AM_I, (_ID,), "0x68 (AD0 low) or 0x69")
        self._w8(_PWR_MGMT_1, _CLK_PLL_X)
        self._w8(_CONFIG, cfg)
        self._w8(_SMPLRT_DIV, div)
        self._w8(_ACCEL_CONFIG, fs << 3)
        self._w8(_INT_ENABLE, _OFLOW)
        self._w8(_FIFO_EN, _ACCEL_FIFO)
        self._w8(_USER_CTRL, _FIFO_RESET)
        self._w8(_USER_CTRL, _FIFO_ON)
        self._r8(_INT_STATUS)  # clear a stale flag
        self.range_g = range_g
        self.bandwidth = _DLPF_HZ[cfg - 1]
        self.scale = 1 / (16384 >> fs)
        self._setup(32, actual)

    def _level(self):
        if self._r8(_INT_STATUS) & _OFLOW:
            # Frames are misaligned after an overflow: restart the FIFO, and count all made
            # since the last poll (plus those left then) as lost.
            self._w8(_USER_CTRL, _FIFO_ON | _FIFO_RESET)
            self._ovr = 1
            return 0
        self._rd(_FIFO_COUNTH, self._b2)
        return ((self._b2[0] << 8) | self._b2[1]) // 6

    def _burst(self, view):
        self._rd(_FIFO_R_W, view)
