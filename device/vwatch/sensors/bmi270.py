"""BMI270 accelerometer (the IMU of the Nano 33 BLE Sense Rev2), read through its FIFO.

    from vwatch.sensors.bmi270 import BMI270
    imu = BMI270(machine.I2C(1), rate=1600, range_g=4, config="/bmi270_config.bin")
    buf = array("h", [0] * 96)
    n = imu.read_into(buf)        # raw int16 frames x y z; buf[i] * imu.scale is g

The BMI270 does nothing until its 8 KB configuration file (Bosch's microcode for the chip)
is uploaded at start-up. vwatch does not ship it: take the array ``bmi270_config_file`` from
Bosch Sensortec's BMI270_SensorAPI (github.com/boschsensortec/BMI270_SensorAPI, bmi270.c,
BSD-3-Clause), save its 8192 bytes as a binary file and pass its path (read in 64-byte pieces)
or the bytes as ``config=``; docs/sensors.md shows a one-line extraction.
The accelerometer alone feeds the 2 KB FIFO in headerless stream mode (6-byte little-endian
frames, 341 of them, the oldest overwritten when full); INT_STATUS_1.ffull_int and a level at
capacity are counted as an overrun. Poll at least every 341 / rate seconds (0.2 s at 1600 Hz).
Facts from Bosch's datasheet BST-BMI270-DS000 ("BMI270"): the initialisation sequence of the
quick start section, the FIFO section (headerless frames, stream mode) and the register map
(cited by register name). Allocates 192 bytes of burst buffer and six memoryviews at
construction (plus a 64-byte upload buffer while loading a config file), nothing per read.
"""

from time import sleep_ms, sleep_us

from micropython import const

from .i2c_sensor import I2CSensor, exact, pick

_CHIP_ID = const(0x00)  # reads 0x24
_ID = const(0x24)
_INT_STATUS_1 = const(0x1D)  # ffull_int (0), fwm_int (1); cleared by reading
_INTERNAL_STATUS = const(0x21)  # message (3..0): 0x1 init_ok, 0x2 init_err
_FIFO_LENGTH_0 = const(0x24)  # FIFO fill level in bytes, 14 bits, little-endian (0x24-0x25)
_FIFO_DATA = const(0x26)  # reading pops the FIFO (no auto-increment)
_ACC_CONF = const(0x40)  # acc_filter_perf (7), acc_bwp (6..4), acc_odr (3..0)
_ACC_RANGE = const(0x41)  # acc_range (1..0): +-2, 4, 8, 16 g
_FIFO_CONFIG_0 = const(0x48)  # fifo_time_en (1), fifo_stop_on_full (0)
_FIFO_CONFIG_1 = const(0x49)  # fifo_gyr_en (7), fifo_acc_en (6), fifo_aux_en (5), header (4)
_INT_MAP_DATA = const(0x58)  # ffull_int1 (0): map "FIFO full" so its status flag is raised
_INIT_CTRL = const(0x59)  # 0 before, 1 after uploading the configuration file
_INIT_ADDR_0 = const(0x5B)  # upload offset in 16-bit words: bits 3..0
_INIT_ADDR_1 = const(0x5C)  # upload offset in 16-bit words: bits 11..4
_INIT_DATA = const(0x5E)  # upload burst data (no auto-increment)
_PWR_CONF = const(0x7C)  # adv_power_save (0): must be 0 for the upload and for full ODR
_PWR_CTRL = const(0x7D)  # acc_en (2)
_CMD = const(0x7E)  # 0xB0 fifo_flush

_PERF_NORMAL = const(0xA0)  # acc_filter_perf = 1 (performance mode), acc_bwp = 2 (normal)
_ACC_EN = const(0x04)
_FIFO_ACC = const(0x40)  # accelerometer only, headerless
_FIFO_FLUSH = const(0xB0)
_FFULL = const(0x01)
_FIFO_BYTES = const(2048)
_CHUNK = const(64)

# acc_odr codes 5..12: 12.5 .. 1600 Hz, doubling (performance mode)
_RATES = (12.5, 25, 50, 100, 200, 400, 800, 1600)
_RANGES = (2, 4, 8, 16)  # sensitivity 16384 LSB/g halving per step


class BMI270(I2CSensor):
    name = "BMI270"
    _fifo = _FIFO_BYTES // 6

    def __init__(self, i2c, address=0x68, rate=1600, range_g=4, config=None):
        # 0x68 with SDO low (the Nano 33 BLE Sense Rev2), 0x69 with it high
        odr = pick(rate, _RATES, "rate", "the BMI270 accelerometer")
        fs = exact(range_g, _RANGES, "range_g", "the BMI270")
        I2CSensor.__init__(self, i2c, address)
        self._check(_CHIP_ID, (_ID,), "0x68 (SDO low) or 0x69")
        if config is None:
            raise ValueError(
                "config=None: the BMI270 needs Bosch's 8 KB configuration file uploaded at "
                "start. Save the bytes of bmi270_config_file from bmi270.c in Bosch Sensortec's "
                "BMI270_SensorAPI (github.com/boschsensortec/BMI270_SensorAPI) to a file, e.g. "
                "/bmi270_config.bin, and pass config='/bmi270_config.bin' (docs/sensors.md)")
        self._w8(_PWR_CONF, 0)  # advanced power save off
        sleep_us(450)  # datasheet: wait 450 us after leaving power save
        self._w8(_INIT_CTRL, 0)
        self._upload(config)
        self._w8(_INIT_CTRL, 1)
        status = 0
        for _ in range(15):  # initialisation takes up to 20 ms
            sleep_ms(10)
            status = self._r8(_INTERNAL_STATUS) & 0x0F
            if status == 1:
                break
        if status != 1:
            raise OSError("BMI270 rejected the configuration file (INTERNAL_STATUS message "
                          "0x%x, 1 means init_ok): config= must be the 8192 bytes of "
                          "bmi270_config_file from Bosch's BMI270_SensorAPI" % status)
        self._w8(_PWR_CTRL, _ACC_EN)
        self._w8(_ACC_CONF, _PERF_NORMAL | (odr + 5))
        self._w8(_ACC_RANGE, fs)
        self._w8(_FIFO_CONFIG_0, 0)  # stream mode: overwrite the oldest frames when full
        self._w8(_FIFO_CONFIG_1, _FIFO_ACC)
        self._w8(_INT_MAP_DATA, _FFULL)  # INT1 pin output stays disabled (INT1_IO_CTRL)
        self._w8(_CMD, _FIFO_FLUSH)
        self._r8(_INT_STATUS_1)  # clear a stale flag
        self.range_g = range_g
        self.scale = 1 / (16384 >> fs)
        self._setup(32, _RATES[odr])

    def _upload(self, config):
        # Burst-write the file to INIT_DATA in pieces, each at its word offset (INIT_ADDR_0/1).
        f = None
        if isinstance(config, str):
            try:
                f = open(config, "rb")
            except OSError as e:
                raise ValueError("config=%r: cannot open the BMI270 configuration file (%s)"
                                 % (config, e))
            piece = bytearray(_CHUNK)
        else:
            data = memoryview(config)
            if len(data) == 0 or len(data) % 2:
                raise ValueError("config: %d bytes; the BMI270 configuration file is 8192 "
                                 "bytes (an even number)" % len(data))
        offset = 0
        try:
            while True:
                if f is None:
                    chunk = data[offset : offset + _CHUNK]
                else:
                    n = f.readinto(piece)
                    chunk = piece if n == _CHUNK else memoryview(piece)[:n]
                if not len(chunk):
                    break
                self._w8(_INIT_ADDR_0, (offset >> 1) & 0x0F)
                self._w8(_INIT_ADDR_1, (offset >> 5) & 0xFF)
                self._wr(_INIT_DATA, chunk)
                offset += len(chunk)
        finally:
            if f is not None:
                f.close()
        if offset == 0:
            raise ValueError("config=%r is empty; the BMI270 configuration file is 8192 bytes"
                             % (config,))

    def _level(self):
        if self._r8(_INT_STATUS_1) & _FFULL:
            self._ovr = 0
        self._rd(_FIFO_LENGTH_0, self._b2)
        nbytes = self._b2[0] | ((self._b2[1] & 0x3F) << 8)
        if nbytes + 6 > _FIFO_BYTES:
            self._ovr = 0  # at capacity: the next frame overwrites the oldest
        return nbytes // 6

    def _burst(self, view):
        self._rd(_FIFO_DATA, view)
