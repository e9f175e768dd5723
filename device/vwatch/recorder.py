"""Stream a sensor's raw samples over the serial console, for `vibrawatch record`.

    import vwatch
    vwatch.record(10)                        # 10 s from the default sensor
    vwatch.record(2, sensor=my_lis3dh)       # any vwatch sensor

Lines are docs/protocol.md "Recording": a start line, one `r` line per burst (sequence number,
frames, CRC-32, base64 of the int16 bytes) and an end line, so the host can prove that nothing
was lost or corrupted on the way. Costs: one burst buffer (2 x channels x burst bytes), and per
burst the base64 text (about 2.7 x the burst's bytes, short-lived).
"""

import binascii
import time
from array import array


# Enough digits to carry the scale exactly: 17 where floats are doubles, 9 where float32.
_SCALE_FMT = "%.17g" if 1.0 + 1e-10 != 1.0 else "%.9g"


def record(seconds, sensor=None, burst=64, out=print):
    """Read ``seconds`` of samples from ``sensor`` and print them as bursts; return frames."""
    if sensor is None:
        from .runtime import default_sensor

        sensor = default_sensor(1.0)  # /replay.wav in real time, as run() would
    ch = sensor.channels
    total = int(seconds * sensor.rate + 0.5)
    buf = array("h", bytes(2 * ch * burst))
    view = memoryview(buf)
    dropped0 = sensor.dropped
    out(("vw1 rec start rate=%.9g ch=%d scale=" + _SCALE_FMT + " frames=%d burst=%d")
        % (sensor.rate, ch, sensor.scale, total, burst))
    seq = done = filled = 0
    t0 = time.ticks_us()
    while done < total:
        size = min(burst, total - done)
        n = sensor.read_into(view[filled * ch :], size - filled)
        filled += n
        if filled == size:
            chunk = view[: size * ch]
            out("r,%d,%d,%08x,%s" % (seq, size, binascii.crc32(chunk) & 0xFFFFFFFF,
                                     binascii.b2a_base64(chunk, newline=False).decode()))
            seq += 1
            done += size
            filled = 0
        elif n == 0:
            if getattr(sensor, "ended", False):
                break  # a replay that ran out: report what there was
            time.sleep_ms(1)
    elapsed = time.ticks_diff(time.ticks_us(), t0)
    measured = done * 1e6 / elapsed if elapsed > 0 else 0.0
    # A replay's clock is its file's: its rate is exact, and what a busy host measures is not.
    # Elsewhere a rate far from the nominal one (a replay faster than real time) is not one.
    exact = getattr(sensor, "exact_rate", False)
    rate = measured if not exact and abs(measured - sensor.rate) < 0.05 * sensor.rate \
        else sensor.rate
    out("vw1 rec end frames=%d dropped=%d rate=%.9g" % (done, sensor.dropped - dropped0, rate))
    return done
