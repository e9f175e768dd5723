"""Register-level models of vwatch's sensor chips, written from their datasheets.

Runs on MicroPython (the drivers are tested there) and on CPython. A ``Bus`` looks like
machine.I2C to a driver (readfrom_mem_into, readfrom_mem, writeto_mem, scan) and holds chips.
Each chip keeps a 256-byte register map; its FIFO fills from a known signal at the rate its
registers configure when the test calls ``advance(frames)``, which also moves the chip's clock
(``ticks_us``; tests hand it to the drivers). The read path allocates nothing, so a driver's
allocation can be measured around its reads.

    bus = Bus(LIS3DHSim())
    acc = LIS3DH(bus, rate=400)
    bus.chip.advance(20)
    n = acc.read_into(buf)       # bus.chip.signal(k) is frame k's acceleration in g

What each model knows is cited beside it; it is deliberately independent of the drivers (its
own tables, decoded from the register bits), so a driver that writes the wrong bits reads the
wrong rate, scale or nothing at all.
"""

import math

_EIO = 5
_ENODEV = 19


class Bus:
    def __init__(self, *chips):
        self.chips = {}
        for c in chips:
            self.chips[c.address] = c
        self.chip = chips[0] if chips else None
        self.fail = 0  # the next `fail` transfers raise OSError(EIO)
        self.transfers = 0

    def scan(self):
        return sorted(self.chips)

    def _get(self, addr):
        self.transfers += 1
        if self.fail:
            self.fail -= 1
            raise OSError(_EIO)
        c = self.chips.get(addr)
        if c is None:
            raise OSError(_ENODEV)  # what machine.I2C raises when nobody acknowledges
        return c

    def readfrom_mem_into(self, addr, reg, buf, addrsize=8):
        self._get(addr).read(reg, buf)

    def readfrom_mem(self, addr, reg, n, addrsize=8):
        b = bytearray(n)
        self.readfrom_mem_into(addr, reg, b)
        return bytes(b)

    def writeto_mem(self, addr, reg, data, addrsize=8):
        self._get(addr).write(reg, data)

    def ticks_us(self):
        return self.chip.t_us


class Other:
    """Any other device on the bus: it acknowledges and reads 0."""

    def __init__(self, address):
        self.address = address

    def read(self, reg, buf):
        for i in range(len(buf)):
            buf[i] = 0

    def write(self, reg, data):
        pass


class Chip:
    """A FIFO of bytes (a ring) behind a register map; subclasses decode their registers."""

    fifo_bytes = 192
    frame = 6
    whole_frames = True  # a full FIFO drops the oldest whole frame (else: the oldest bytes)

    def __init__(self, address):
        self.address = address
        self.regs = bytearray(256)
        self.fifo = bytearray(self.fifo_bytes)
        self.head = 0
        self.count = 0
        self.k = 0  # frames made so far
        self.t_us = 0
        self._t = 0.0
        self.lost = 0  # frames overwritten before anyone read them
        self.lost_bytes = 0
        self.underreads = 0  # bytes read from an empty FIFO (a driver reading too much)
        self.ovr = False
        self.reset()

    def reset(self):
        pass

    # the known signal, in g, frame k (the same shape at every rate)
    def signal(self, k):
        return (0.5 * math.sin(2 * math.pi * k / 16),
                -0.25 + 0.3 * math.cos(2 * math.pi * k / 50),
                1.0 + 0.1 * math.sin(2 * math.pi * k / 7))

    def advance(self, frames):
        """Let ``frames`` sample periods pass at the configured rate (allocates: test side)."""
        rate = self.rate()
        for _ in range(frames):
            if rate and self.running():
                g = self.signal(self.k)
                self.k += 1
                self.store(g)
            self._t += 1e6 / rate if rate else 1000.0
            self.t_us = int(self._t)

    def counts(self, g, lsb_g, bits):
        c = int(round(g / lsb_g))
        top = (1 << (bits - 1)) - 1
        return top if c > top else -top - 1 if c < -top - 1 else c

    def level(self):
        return self.count // self.frame

    def res_g(self):  # the quantisation step in g (one LSB of the chip's resolution)
        return self.lsb_g()

    def push(self, data):
        cap = len(self.fifo)
        n = len(data)
        while self.count + n > cap:
            drop = self.frame if self.whole_frames else self.count + n - cap
            self.head = (self.head + drop) % cap
            self.count -= drop
            self.lost += 1 if self.whole_frames else 0
            self.lost_bytes += drop
            self.ovr = True
            self.overflowed()
        t = (self.head + self.count) % cap
        for i in range(n):
            self.fifo[(t + i) % cap] = data[i]
        self.count += n

    def overflowed(self):
        pass

    def pop(self, empty=0):
        if self.count == 0:
            self.underreads += 1
            return empty
        v = self.fifo[self.head]
        self.head += 1
        if self.head == len(self.fifo):
            self.head = 0
        self.count -= 1
        return v

    def flush(self):
        self.head = 0
        self.count = 0
        self.ovr = False

    def write(self, reg, data):
        for i in range(len(data)):
            self.wr(reg + i, data[i])

    def wr(self, p, v):
        self.regs[p] = v


def _le(c):
    return (c & 0xFF, (c >> 8) & 0xFF)


class LSM9DS1Sim(Chip):
    """ST LSM9DS1, accelerometer/gyroscope part (DocID025715 Rev 3, section 7)."""

    fifo_bytes = 32 * 6

    def __init__(self, address=0x6B):
        Chip.__init__(self, address)

    def reset(self):
        self.regs[0x0F] = 0x68  # WHO_AM_I
        self.regs[0x1F] = 0x38  # CTRL_REG5_XL: axes on
        self.regs[0x22] = 0x04  # CTRL_REG8: IF_ADD_INC

    def rate(self):
        odr_g = self.regs[0x10] >> 5
        if odr_g:  # gyroscope on: both run at the gyroscope's ODR (CTRL_REG1_G)
            return (0, 14.9, 59.5, 119, 238, 476, 952, 0)[odr_g]
        return (0, 10, 50, 119, 238, 476, 952, 0)[self.regs[0x20] >> 5]  # CTRL_REG6_XL

    def lsb_g(self):  # FS_XL: 00 2 g, 01 16 g, 10 4 g, 11 8 g (Table 3 sensitivity)
        return (0.061, 0.732, 0.122, 0.244)[(self.regs[0x20] >> 3) & 3] / 1000

    def running(self):
        return True

    def fifo_on(self):  # FIFO_EN in CTRL_REG9 and FMODE = 110 (continuous) in FIFO_CTRL
        return (self.regs[0x23] & 0x02) and (self.regs[0x2E] >> 5) == 6

    def store(self, g):
        b = bytearray(6)
        for a in range(3):
            b[2 * a], b[2 * a + 1] = _le(self.counts(g[a], self.lsb_g(), 16))
        if self.fifo_on():
            self.push(b)
        else:
            self.regs[0x28:0x2E] = b

    def wr(self, p, v):
        self.regs[p] = v
        if p == 0x2E and (v >> 5) == 0:
            self.flush()  # bypass mode empties the FIFO

    def read(self, reg, buf):
        p = reg
        regs = self.regs
        for i in range(len(buf)):
            if p == 0x2F:
                lvl = self.level()
                fth = regs[0x2E] & 0x1F
                buf[i] = lvl | (0x40 if self.ovr else 0) | (0x80 if fth and lvl >= fth else 0)
            else:
                if p == 0x28 and self.fifo_on():
                    if self.count:
                        for j in range(6):
                            regs[0x28 + j] = self.pop()
                        self.ovr = False
                    else:
                        self.underreads += 1
                buf[i] = regs[p]
            if regs[0x22] & 0x04:
                p += 1
                if p == 0x2E and self.fifo_on():
                    p = 0x28  # roll-back in FIFO mode


class LIS3DHSim(Chip):
    """ST LIS3DH (DocID17530 Rev 2, section 8; FIFO as in AN3308)."""

    fifo_bytes = 32 * 6

    def __init__(self, address=0x18):
        Chip.__init__(self, address)

    def reset(self):
        self.regs[0x0F] = 0x33
        self.regs[0x20] = 0x07  # CTRL_REG1: power-down, axes on

    def mode_bits(self):  # (bits, mg/digit) from LPen and HR; operating-mode table
        fs = (self.regs[0x23] >> 4) & 3
        if self.regs[0x20] & 0x08:
            return 8, (16, 32, 64, 192)[fs]
        if self.regs[0x23] & 0x08:
            return 12, (1, 2, 4, 12)[fs]
        return 10, (4, 8, 16, 48)[fs]

    def rate(self):
        odr = self.regs[0x20] >> 4
        if self.regs[0x20] & 0x08:
            return (0, 1, 10, 25, 50, 100, 200, 400, 1620, 5376, 0, 0, 0, 0, 0, 0)[odr]
        return (0, 1, 10, 25, 50, 100, 200, 400, 0, 1344, 0, 0, 0, 0, 0, 0)[odr]

    def lsb_g(self):  # per left-justified 16-bit count
        bits, mg = self.mode_bits()
        return mg / 1000 / (1 << (16 - bits))

    def res_g(self):
        return self.mode_bits()[1] / 1000

    def running(self):
        return True

    def fifo_on(self):  # FIFO_EN (CTRL_REG5) and FM = 10 (stream)
        return (self.regs[0x24] & 0x40) and (self.regs[0x2E] >> 6) == 2

    def store(self, g):
        bits, mg = self.mode_bits()
        b = bytearray(6)
        for a in range(3):
            c = self.counts(g[a], mg / 1000, bits) << (16 - bits)  # left-justified
            b[2 * a], b[2 * a + 1] = _le(c)
        if self.fifo_on():
            self.push(b)
        else:
            self.regs[0x28:0x2E] = b

    def wr(self, p, v):
        self.regs[p & 0x7F] = v
        if p & 0x7F == 0x2E and (v >> 6) == 0:
            self.flush()

    def read(self, reg, buf):
        inc = reg & 0x80  # sub-address MSB: auto-increment
        p = reg & 0x7F
        regs = self.regs
        for i in range(len(buf)):
            if p == 0x2F:
                lvl = self.level()
                fth = regs[0x2E] & 0x1F
                if lvl == 0:
                    v = 0x20
                elif lvl >= 32:
                    v = 0x40 | 0x1F
                else:
                    v = lvl
                buf[i] = v | (0x80 if fth and lvl > fth else 0)
            else:
                if p == 0x28 and self.fifo_on():
                    if self.count:
                        for j in range(6):
                            regs[0x28 + j] = self.pop()
                    else:
                        self.underreads += 1
                buf[i] = regs[p]
            if inc:
                p += 1
                if p == 0x2E and (regs[0x24] & 0x40):
                    p = 0x28


class ADXL345Sim(Chip):
    """Analog Devices ADXL345 (datasheet Rev. G: register map, FIFO section, Table 1)."""

    fifo_bytes = 32 * 6

    def __init__(self, address=0x53):
        Chip.__init__(self, address)

    def reset(self):
        self.regs[0x00] = 0xE5
        self.regs[0x2C] = 0x0A  # BW_RATE: 100 Hz

    def rate(self):
        return 3200 / (1 << (15 - (self.regs[0x2C] & 0x0F)))

    def running(self):
        return self.regs[0x2D] & 0x08  # POWER_CTL Measure

    def fmt(self):  # (bits, g per count, left-justify) from DATA_FORMAT
        r = self.regs[0x31] & 3
        if self.regs[0x31] & 0x08:
            return 10 + r, 0.0039, self.regs[0x31] & 0x04
        return 10, 0.0039 * (1 << r), self.regs[0x31] & 0x04

    def lsb_g(self):
        return self.fmt()[1]

    def fifo_on(self):
        return (self.regs[0x38] >> 6) != 0

    def store(self, g):
        bits, lsb, left = self.fmt()
        b = bytearray(6)
        for a in range(3):
            c = self.counts(g[a], lsb, bits)
            if left:
                c <<= 16 - bits
            b[2 * a], b[2 * a + 1] = _le(c)
        if self.fifo_on():
            self.push(b)
        else:
            self.regs[0x32:0x38] = b

    def wr(self, p, v):
        self.regs[p] = v
        if p == 0x38 and (v >> 6) == 0:
            self.flush()

    def read(self, reg, buf):
        p = reg
        regs = self.regs
        for i in range(len(buf)):
            if p == 0x30:  # INT_SOURCE: bits set whatever INT_ENABLE says
                lvl = self.level()
                buf[i] = ((0x80 if lvl else 0) | (0x02 if lvl >= (regs[0x38] & 0x1F) else 0)
                          | (0x01 if lvl >= 32 else 0))
            elif p == 0x39:
                buf[i] = self.level()
            else:
                if p == 0x32 and self.fifo_on():
                    if self.count:
                        for j in range(6):
                            regs[0x32 + j] = self.pop()
                    else:
                        self.underreads += 1
                buf[i] = regs[p]
            p += 1  # no roll-back: past DATAZ1 come FIFO_CTL and FIFO_STATUS


class MPU6050Sim(Chip):
    """InvenSense MPU-6050 (RM-MPU-6000A-00 Rev 4.2)."""

    fifo_bytes = 1024
    whole_frames = False  # the FIFO overwrites the oldest bytes (frames misalign)

    def __init__(self, address=0x68):
        Chip.__init__(self, address)

    def reset(self):
        self.regs[0x75] = 0x68
        self.regs[0x6B] = 0x40  # PWR_MGMT_1: SLEEP after power-up
        self.int_status = 0

    def rate(self):
        cfg = self.regs[0x1A] & 7
        gyro = 8000 if cfg in (0, 7) else 1000
        return gyro / (1 + self.regs[0x19])

    def running(self):
        return not (self.regs[0x6B] & 0x40)

    def fifo_on(self):
        return (self.regs[0x6A] & 0x40) and (self.regs[0x23] & 0x08)

    def lsb_g(self):
        return 1 / (16384 >> ((self.regs[0x1C] >> 3) & 3))

    def store(self, g):
        b = bytearray(6)
        for a in range(3):
            c = self.counts(g[a], self.lsb_g(), 16) & 0xFFFF
            b[2 * a], b[2 * a + 1] = c >> 8, c & 0xFF  # big-endian
        b3 = self.regs
        b3[0x3B:0x41] = b
        if self.fifo_on():
            self.push(b)

    def overflowed(self):
        if self.regs[0x38] & 0x10:  # FIFO_OFLOW_EN
            self.int_status |= 0x10

    def wr(self, p, v):
        if p == 0x6B and v & 0x80:  # DEVICE_RESET
            self.regs = bytearray(256)
            self.flush()
            self.reset()
            return
        if p == 0x6A and v & 0x04:  # FIFO_RESET, self-clearing
            self.flush()
            v &= ~0x04
        self.regs[p] = v

    def read(self, reg, buf):
        p = reg
        for i in range(len(buf)):
            if p == 0x74:
                buf[i] = self.pop()
                continue  # FIFO_R_W does not auto-increment
            if p == 0x3A:
                buf[i] = self.int_status
                self.int_status = 0  # cleared by reading
            elif p == 0x72:
                buf[i] = self.count >> 8
            elif p == 0x73:
                buf[i] = self.count & 0xFF
            else:
                buf[i] = self.regs[p]
            p += 1


def bmi_config(i):
    """Byte i of the stand-in for Bosch's BMI270 configuration file (tests cannot ship it)."""
    return (i * 7 + 3) & 0xFF


class BMI270Sim(Chip):
    """Bosch BMI270 (BST-BMI270-DS000): config upload, headerless accelerometer FIFO.
    Instead of storing the 8 KB file it checks each uploaded byte against ``bmi_config``."""

    fifo_bytes = 2048

    def __init__(self, address=0x68, size=8192):
        self.size = size
        self.seen = bytearray(size // 8)  # one bit per byte of the file uploaded correctly
        self.bad = 0  # bytes uploaded to the wrong place or with the wrong value
        Chip.__init__(self, address)

    def uploaded(self):
        return self.bad == 0 and all(b == 0xFF for b in self.seen)

    def reset(self):
        r = self.regs
        r[0x00] = 0x24
        r[0x40] = 0xA8  # ACC_CONF: 100 Hz
        r[0x41] = 0x02  # ACC_RANGE: 8 g
        r[0x48] = 0x02
        r[0x49] = 0x10  # FIFO_CONFIG_1: header mode, nothing enabled
        r[0x7C] = 0x03  # PWR_CONF: adv_power_save on
        self.int_status_1 = 0

    def rate(self):
        odr = self.regs[0x40] & 0x0F
        return 1600 / (1 << (12 - odr)) if 1 <= odr <= 12 else 0

    def running(self):
        return (self.regs[0x21] & 0x0F) == 1 and (self.regs[0x7D] & 0x04)

    def lsb_g(self):
        return 1 / (16384 >> (self.regs[0x41] & 3))

    def store(self, g):
        b = bytearray(6)
        for a in range(3):
            b[2 * a], b[2 * a + 1] = _le(self.counts(g[a], self.lsb_g(), 16))
        self.regs[0x0C:0x12] = b
        c1 = self.regs[0x49]
        if not c1 & 0x40:
            return
        if c1 & 0x10:  # header mode: a regular accelerometer frame header first
            b = bytes([0x84]) + b
        if self.regs[0x48] & 0x01 and self.count + len(b) > len(self.fifo):
            return  # stop-on-full mode keeps the old data
        self.frame = len(b)
        self.push(b)
        if self.count + len(b) > len(self.fifo):
            self.int_status_1 |= 0x01

    def overflowed(self):
        self.int_status_1 |= 0x01  # ffull

    def wr(self, p, v):
        r = self.regs
        if p == 0x7E:
            if v == 0xB0:
                self.flush()
            return
        r[p] = v
        if p == 0x59 and v == 1:  # INIT_CTRL: the chip checks what was uploaded
            r[0x21] = 0x01 if self.uploaded() else 0x02

    def write(self, reg, data):
        if reg != 0x5E:
            return Chip.write(self, reg, data)
        # INIT_DATA: a burst lands at the word offset in INIT_ADDR_0/1, only with power save
        # off and INIT_CTRL = 0
        if self.regs[0x7C] & 0x01 or self.regs[0x59]:
            return
        off = ((self.regs[0x5C] << 4) | (self.regs[0x5B] & 0x0F)) * 2
        for i in range(len(data)):
            o = off + i
            if o < self.size and data[i] == bmi_config(o):
                self.seen[o >> 3] |= 1 << (o & 7)
            else:
                self.bad += 1

    def read(self, reg, buf):
        p = reg
        for i in range(len(buf)):
            if p == 0x26:  # FIFO_DATA: pops, no auto-increment; empty reads 0x8000 frames
                buf[i] = self.pop(0x80 if i % 2 == 0 else 0x00)
                continue
            if p == 0x1D:
                buf[i] = self.int_status_1
                self.int_status_1 = 0
            elif p == 0x24:
                buf[i] = self.count & 0xFF
            elif p == 0x25:
                buf[i] = (self.count >> 8) & 0x3F
            else:
                buf[i] = self.regs[p]
            p += 1


class FakeADC:
    """machine.ADC look-alike: read_u16 of a sine around mid-scale, one value per call.
    The values come from a table, so reading allocates nothing (like a real ADC)."""

    def __init__(self):
        self.k = 0
        self.table = [32768 + int(20000 * math.sin(2 * math.pi * k / 16)) for k in range(16)]

    def value(self, k):
        return self.table[k % 16]

    def read_u16(self):
        v = self.table[self.k % 16]
        self.k += 1
        return v


class FakeTimer:
    """machine.Timer look-alike; ``fire(n)`` runs the callback n times."""

    def __init__(self):
        self.freq = None
        self.callback = None

    def init(self, freq=None, callback=None, **kw):
        self.freq = freq
        self.callback = callback

    def fire(self, n):
        for _ in range(n):
            self.callback(self)

    def deinit(self):
        self.callback = None
