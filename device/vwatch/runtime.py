"""The detector: sensor -> ring -> features -> score -> alarm -> one report line per window.

    import vwatch
    vwatch.run()                                       # /model.vwm on /replay.wav (emulated board)
    from vwatch.sensors.lsm9ds1 import LSM9DS1
    vwatch.run(sensor=LSM9DS1(machine.I2C(1), rate=952))    # on a real sensor; Ctrl-C stops
    from vwatch.replay import Replay
    vwatch.run("/m.vwm", Replay("/rec.wav", speed=0), windows=100, backend="pure")
    vwatch.status()                                    # the last window's state

Prints the lines of docs/protocol.md (version 1) through ``out`` (default print): a start
line, one line per window, alarm on/off events, warnings, and a stop line on Ctrl-C, stop(),
after ``windows`` windows or at the end of a replay.
Everything is allocated before the first window: the ring (2 * C * (N + min(hop, N, S))
bytes, S = max(256, the sensor's FIFO depth in frames); first, while the heap is in one
piece), the model's arrays, the backend's buffers, the alarm history. Per window the loop allocates
the report line and, on ports that box floats, short-lived floats; nothing survives a window.
When a run ends its objects are kept: a next run() on the same model file (same path, size
and CRC), backend and sensor scale resets and reuses them, so a user's second run after
Ctrl-C needs no more heap than the first. Any other run(), release(), score_file(),
record() and learn() let them go first.
"""

import gc
import sys
import time

from micropython import const

from . import _unload

REPLAY = "/replay.wav"  # where `vibrawatch emulate --replay` puts the recording
_SETTINGS = "/vwatch.json"  # board settings: MQTT broker, Wi-Fi (vwatch.mqtt)
_ABOVE = const(1)
_NONFINITE = const(2)
_SATURATED = const(4)
_RETRIED = const(8)
_WARN_EVERY = const(1000)  # windows between two warnings of the same kind

_state = None  # the current or last run: see status()
_kept = None  # the last run's (model fingerprint, backend, m, fe, ring, alarm): see run()
_stop = False


class State:
    """The last window of a run, for status(); updated in place, never reallocated."""

    def __init__(self, model, sensor, backend):
        self.model = model.model_id
        self.sensor = "%s" % sensor  # its description: a finished run holds no sensor
        self.backend = backend
        self.running = True
        self.seq = -1
        self.score = 0.0
        self.alarm = 0
        self.flags = 0
        self.dropped = 0  # frames lost since start: ring overflow plus the sensor's own
        self.errors = 0  # sensor reads retried since start
        self.micros = 0

    def __repr__(self):
        return "<vwatch %s model=%s backend=%s seq=%d score=%.4g alarm=%d>" % (
            "running" if self.running else "stopped", self.model, self.backend, self.seq,
            self.score, self.alarm)


def stop():
    """Ask the running loop to stop after its current window (callable from a Timer callback
    or another thread: it only sets a flag)."""
    global _stop
    _stop = True


def status(out=print):
    """Print the state of the current or last run and the heap; return the State (or None)."""
    st = _state
    if st is None:
        out("vwatch: not started; run vwatch.run()")
        return None
    gc.collect()
    out("vwatch %s: model=%s backend=%s seq=%d score=%.4g alarm=%d flags=%d dropped=%d "
        "errors=%d us=%d heap_free=%d heap_used=%d sensor=%s"
        % ("running" if st.running else "stopped", st.model, st.backend, st.seq, st.score,
           st.alarm, st.flags, st.dropped, st.errors, st.micros, gc.mem_free(), gc.mem_alloc(),
           st.sensor))
    return st


def _exists(path):
    import os

    try:
        os.stat(path)
        return True
    except OSError:
        return False


def default_sensor(speed=1.0):
    """A Replay of /replay.wav (the emulated board's recording) at ``speed``, or a ValueError
    that lists the sensors to pass instead."""
    if _exists(REPLAY):
        from .replay import Replay

        return Replay(REPLAY, speed=speed)
    raise ValueError(
        "no sensor given and no %s to replay; pass one, e.g. vwatch.run(sensor=s) with s = "
        "replay.Replay('/rec.wav') or, from vwatch.sensors, lsm9ds1.LSM9DS1(i2c), "
        "bmi270.BMI270(i2c), mpu6050.MPU6050(i2c), adxl345.ADXL345(i2c), lis3dh.LIS3DH(i2c) "
        "or adc.Analog(machine.ADC(pin))"
        % REPLAY)


def run(model="/model.vwm", sensor=None, backend=None, speed=1.0, windows=None, out=print,
        report=None):
    """Run the detector (see the module doc); return the number of windows reported.

    model: a model file's path (or a loaded vwatch.model.Model); sensor: a vwatch sensor
    (default: a Replay of /replay.wav at ``speed``); backend: 'ulab', 'pure' or None (ulab
    when it imports); windows: stop after this many windows (None: until stopped);
    report: an object told of every window (vwatch.mqtt.Reporter); None: MQTT when
    /vwatch.json asks for it (docs/mqtt.md); False: none.
    The run's buffers are kept when it ends, for a next run() on the same model and backend
    (a user's run after Ctrl-C), which then allocates nothing big; release() lets them go."""
    global _state, _stop
    _stop = False
    # The last run's state (and the sensor it holds) was allocated after that run's buffers,
    # high in the heap: let it go before this run's buffers look for room.
    _state = None
    gc.collect()
    try:
        st = _run(model, sensor, backend, speed, windows, out, report)
    except BaseException:
        # Here, not in _run: MicroPython's GC also scans a running function's stale stack
        # slots, which would keep the run's buffers alive until it returns.
        release()
        raise
    return st.seq + 1


def release():
    """Let the last run's buffers and backend code go (run() keeps them for a next run).
    The backend's modules are forgotten too, so that a run with another model loads them
    again into the heap the first one found, not into its holes."""
    global _kept
    _kept = None
    for name in _RUN_MODULES:
        _unload(name)
    gc.collect()


def _fingerprint(model):
    # What tells one model file from another without reading it: its path, size and stored
    # CRC-32 (its last 4 bytes, over everything before them). A loaded Model: itself.
    if not isinstance(model, str):
        return model
    try:
        with open(model, "rb") as f:
            size = f.seek(0, 2)
            f.seek(size - 4)
            return "%s %d %s" % (model, size, f.read(4))
    except (OSError, ValueError):
        return None  # allocate() says what is wrong with it


def _reuse(fp, sensor, backend, speed):
    # The kept run's (m, sensor, fe, ring, alarm), reset to a fresh start, when this run asks
    # for the same model (fingerprint fp) and backend with a sensor of the same scale and
    # FIFO; else None, the kept run let go. Also returns the sensor (made here if None).
    if _kept is None:
        return None, sensor
    kept_fp, kept_backend, m, fe, ring, alarm = _kept
    if fp != kept_fp or backend != kept_backend:
        m = fe = ring = alarm = None
        release()
        return None, sensor
    if sensor is None:
        sensor = default_sensor(speed)
    _unload("wav")  # a replay keeps only its file, as in start.prepare
    from .ring import default_frames

    # (vwatch.check_source is not loaded for this: a sensor that does not fit the
    # model is refused by allocate(), with the reason)
    if (sensor.channels != m.channels or abs(sensor.rate - m.rate) > 0.005 * m.rate
            or sensor.scale != ring.scale
            or ring.cap != default_frames(m.window, m.hop, getattr(sensor, "_fifo", 0))):
        m = fe = ring = alarm = None
        release()
        return None, sensor
    ring.reset()
    alarm.reset()
    low = getattr(fe, "low", None)
    if low:
        low.reset()
    return (m, sensor, fe, ring, alarm), sensor


def _run(model, sensor, backend, speed, windows, out, report):
    global _state, _kept
    own = sensor is None  # a sensor made here is closed here
    fp = _fingerprint(model)
    try:
        got, sensor = _reuse(fp, sensor, backend, speed)
    except Exception as e:
        out("vw1 error %s" % e)
        raise
    if got is None:
        got = allocate(model, sensor, backend, speed, out)
    m, sensor, fe, ring, alarm = got
    got = None
    st = State(m, sensor, fe.name)
    _state = st
    if report is None and _exists(_SETTINGS):
        from .mqtt import from_settings

        report = from_settings(_SETTINGS, out)
    if report:
        report.start(m, st, sensor.rate, out)
    else:
        report = None
    gc.collect()
    v = sys.implementation.version
    form = getattr(fe, "form", "pca" if m.p else "packed")  # ulab: dense L^T if it fits
    out("vw1 start fw=%d.%d.%d backend=%s model=%s rate=%g ch=%d win=%d hop=%d feat=%d thr=%g "
        "heap_free=%d heap_used=%d score=%s" % (v[0], v[1], v[2], fe.name, m.model_id,
                                                sensor.rate, m.channels, m.window, m.hop, m.d,
                                                m.threshold, gc.mem_free(), gc.mem_alloc(),
                                                form))
    try:
        _loop(m, sensor, fe, ring, alarm, st, windows, out, report)
    except KeyboardInterrupt:
        pass
    except Exception as e:
        st.running = False
        out("vw1 error %s at window %d: %s" % (type(e).__name__, st.seq + 1, e))
        raise
    finally:
        st.running = False
        if report is not None:
            report.stop()
        if own:
            sensor.close()
    out("vw1 stop seq=%d" % st.seq)
    _kept = (fp, backend, m, fe, ring, alarm)
    return st


def allocate(model, sensor, backend=None, speed=1.0, out=print):
    """Everything run()'s loop needs, as (m, sensor, fe, ring, alarm): vwatch.start's half
    (ring frames, model, sensor), then, with start's code gone, the code of the ring, the
    alarm and the backend and the backend's buffers (it loads its kernels after them), the
    alarm's few bytes. A failure is printed as a "vw1 error" line and raised."""
    from . import start

    try:
        buf, m, sensor = start.prepare(model, sensor, backend, speed, default_sensor)
        start = None
        _unload("start")  # its code is not needed once the run is set up
        gc.collect()
        return _build(buf, m, sensor, backend)
    except MemoryError as e:
        buf = m = None
        from . import start

        msg = start.memory_message(e, model, backend)
        out("vw1 error " + msg.split(";")[0])
        raise MemoryError(msg)
    except Exception as e:
        out("vw1 error %s" % e)
        raise
    finally:
        start = None
        _unload("start")


def _build(buf, m, sensor, backend):
    from . import backend_class
    from .alarm import Alarm
    from .ring import Ring, default_frames

    fifo = getattr(sensor, "_fifo", 0)
    if buf is not None and (len(buf) % m.channels or
                            len(buf) < m.channels * default_frames(m.window, m.hop, fifo)):
        # (a header that disagreed with the file would have been refused); the default
        # sensor, made after the buffer, may want more slack (a real-time replay does)
        buf = None
        gc.collect()
    ring = Ring(m.channels, m.window, m.hop, sensor.scale, fifo=fifo, buf=buf)
    buf = None
    return m, sensor, backend_class(backend)(m), ring, Alarm(m.alarm_k, m.alarm_n,
                                                             m.threshold, m.clear)


_RUN_MODULES = ("backend_ulab", "ulab_kernels", "backend_q15", "q15_spectrum", "q15_score",
                "backend_pure", "pure_kernels", "float_score", "ring", "alarm", "fpu", "zoom",
                "pure_zoom", "q15_zoom", "ulab_zoom", "ulab_pairs")


def _loop(m, sensor, fe, ring, alarm, st, windows, out, report=None):
    thr = m.threshold
    full = sensor.full_scale
    realtime = getattr(sensor, "realtime", True)
    seen_dropped = sensor.dropped  # the sensor's counters when last reported
    seen_errors = sensor.errors
    warned_drop = -_WARN_EVERY
    warned_err = -_WARN_EVERY
    raised = 0
    seq = 0
    low = getattr(fe, "low", None)  # the zoom block's low ring (vwatch.zoom)
    skipped = 0  # windows without a zoom history (not reported; their seq is kept)
    while not _stop:
        got = ring.fill(sensor)
        if not ring.ready():
            if getattr(sensor, "ended", False):
                return
            if realtime and not got:
                time.sleep_ms(1)  # nothing new: let the sensor fill its FIFO
            continue
        t0 = time.ticks_us()
        if low and not low.window(ring, seq):  # no zoom history yet: no such window
            ring.advance()
            seq += 1
            skipped += 1
            continue
        flags = 0
        peak = -1
        if ring.tainted():
            flags = _NONFINITE
        else:
            fe.compute(ring, 0)
            peak = fe.peak  # max |raw sample| when the backend's pass found it (q15), or -1
            s = fe.score()
            if s != s or s * 0.0 != 0.0:  # NaN or infinity out of finite input (overflow)
                flags = _NONFINITE
            else:
                if s > thr:
                    flags = _ABOVE
                raised = 1 if alarm.step(s) else 0
        if peak < 0:
            peak = ring.peak()
        if peak >= full:
            flags |= _SATURATED
        e = sensor.errors
        if e != seen_errors:
            flags |= _RETRIED
        d = ring.dropped + sensor.dropped
        dropped = d - seen_dropped
        ring.advance()
        us = time.ticks_diff(time.ticks_us(), t0)
        if flags & _NONFINITE:
            out("w,%d,nan,%d,%d,%d,%d" % (seq, raised, flags, dropped, us))
        else:
            out("w,%d,%.4g,%d,%d,%d,%d" % (seq, s, raised, flags, dropped, us))
            st.score = s
        if raised != st.alarm:
            if raised:
                out("vw1 alarm on seq=%d score=%.4g" % (seq, s))
            else:
                out("vw1 alarm off seq=%d" % seq)
        if dropped and seq - warned_drop >= _WARN_EVERY:
            warned_drop = seq
            out("vw1 warn %d samples dropped before window %d (%d since start): processing "
                "is slower than the sensor" % (dropped, seq, d))
        if e != seen_errors and seq - warned_err >= _WARN_EVERY:
            warned_err = seq
            out("vw1 warn %d sensor reads retried (%d since start)" % (e - seen_errors, e))
        seen_dropped = d
        seen_errors = e
        st.seq = seq
        st.alarm = raised
        st.flags = flags
        st.dropped = d
        st.errors = e
        st.micros = us
        if report is not None:
            report.window(st)  # bounded time: see vwatch.mqtt
        seq += 1
        if windows is not None and seq - skipped >= windows:
            return
