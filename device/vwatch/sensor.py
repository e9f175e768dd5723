"""The interface every vwatch sensor driver implements (and what the runtime relies on).

    from vwatch.sensors.lsm9ds1 import LSM9DS1
    imu = LSM9DS1(machine.I2C(1), rate=952)
    buf = array('h', 3 * 64)
    n = imu.read_into(buf)          # frames read now, interleaved raw int16: x0 y0 z0 x1 ...
    g = buf[0] * imu.scale          # raw -> g

A driver reads what the chip has buffered (its FIFO where it has one) without blocking for
more, so the runtime can poll it between windows without losing samples. Samples the chip lost
anyway (FIFO overrun) are counted in ``dropped``; bus errors that were retried in ``errors``.

How the drivers in vwatch.sensors keep that contract (docs/sensors.md lists them; the
replay sensor, vwatch.replay, implements it too, so it stays in the core):
- ``dropped`` counts frames (one sample on every channel). A FIFO's overrun flag says that
  frames were lost, not how many: the I2C drivers count the frames the chip made since the
  last poll (clock x rate) beyond what the FIFO kept, at least 1 when the chip says a frame
  was overwritten. The ADC counts sample instants it missed.
- A bus transfer that raises OSError is tried again twice; each retry adds 1 to ``errors``;
  the third failure is re-raised (so a read loop can count it and go on).
- A chip that is absent or has the wrong id raises ``vwatch.sensors.i2c_sensor.SensorNotFound``
  (an OSError) whose message lists the addresses an I2C scan sees; bad settings raise ValueError
  naming the setting. ``rate`` is the nearest rate the chip supports to the one asked for.
- Buffers are made in the constructor; ``read_into`` allocates nothing.
"""


class Sensor:
    name = "sensor"
    channels = 3  # values per frame
    rate = 0.0  # frames per second the chip actually runs at (not merely what was asked)
    scale = 1.0  # g (or volts, for an ADC) per raw count
    full_scale = 32767  # |raw| at or above this is saturated
    dropped = 0  # samples lost since start (FIFO overruns, late polls)
    errors = 0  # bus errors retried since start

    def read_into(self, buf, max_frames=None):
        """Copy up to max_frames (default len(buf) // channels) buffered frames into ``buf``
        (array('h'), interleaved); return how many. Never blocks waiting for new samples."""
        raise NotImplementedError

    def close(self):
        pass

    def __repr__(self):
        return "<%s %d ch at %g Hz, %g g/count>" % (self.name, self.channels, self.rate,
                                                     self.scale)
