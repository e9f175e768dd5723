"""vwatch: vibration anomaly scoring on a MicroPython board (the device side of vibrawatch).

    import vwatch
    vwatch.score_file("/model.vwm", "/rec.wav")            # one line per window, see below
    vwatch.score_file("/model.vwm", "/rec.wav", "pure")    # force a backend
    vwatch.run()                      # the detector: /model.vwm, /replay.wav or a sensor
    vwatch.run(sensor=LSM9DS1(i2c))   # ... on a real sensor; Ctrl-C stops it
    vwatch.status()                   # the last window's state (seq, score, alarm, drops)
    vwatch.learn(600)                 # learn normal for 10 min, write /model.vwm, run it

Submodules load on first use, so `import vwatch` costs almost nothing:
model (model files), wav (recordings), fe_pure / fe_ulab / fe_q15 (features and score),
ring, replay, alarm, runtime (the detector). Output lines of score_file are specified in
docs/score-lines.md, those of run in docs/protocol.md.
"""

__version__ = "0.1.0"


def backend_class(backend=None):
    """The Features class of a backend. 'auto' (or None): 'ulab' when ulab imports, else
    'q15' (fixed point) on an MCU without an FPU (vwatch.fpu.has_fpu), else 'pure'."""
    if backend is None or backend == "auto":
        try:
            from ulab import numpy  # noqa: F401

            backend = "ulab"
        except ImportError:
            from .fpu import has_fpu  # its table costs heap: loaded only where it is needed

            backend = "pure" if has_fpu() else "q15"
    if backend == "pure":
        from .fe_pure import Features
    elif backend == "ulab":
        from .fe_ulab import Features
    elif backend == "q15":
        from .fe_q15 import Features
    else:
        raise ValueError("backend %r is not one of 'auto', 'pure', 'ulab', 'q15'; pick one of "
                         "those" % (backend,))
    return Features


def features(model, backend=None):
    """A feature backend for ``model``, its buffers allocated (see backend_class)."""
    return backend_class(backend)(model)


def check_recording(model, wav):
    """Raise ValueError unless ``wav`` has the model's channels and rate and one window."""
    if wav.channels != model.channels:
        raise ValueError("%s: %d channels but model %s expects %d; record with the model's "
                         "channels or fit a model for this layout"
                         % (wav.path, wav.channels, model.model_id, model.channels))
    if abs(wav.rate - model.rate) > 0.005 * model.rate:
        raise ValueError("%s: sample rate %d Hz but model %s expects %g Hz (0.5 %% tolerance); "
                         "resample the recording or fit a model at this rate"
                         % (wav.path, wav.rate, model.model_id, model.rate))
    if wav.frames < model.window:
        raise ValueError("%s: %d frames, shorter than one window of %d; record at least %d "
                         "frames" % (wav.path, wav.frames, model.window, model.window))


def score_file(model_path, wav_path, backend=None):
    """Score every window of a WAV recording; print the lines of docs/score-lines.md."""
    import gc

    from .model import load
    from .wav import Wav

    cls = backend_class(backend)
    # Compiling a module leaves holes in a small heap, so the big arrays come right after
    # these small modules: the model's, then the backend's (which compiles its kernels after).
    gc.collect()
    m = load(model_path)
    fe = cls(m)
    w = Wav(wav_path)
    try:
        check_recording(m, w)
        n = m.window
        hop = m.hop
        count = (w.frames - n) // hop + 1
        low = getattr(fe, "low", None)  # a zoom block: the first windows do not exist
        first = low.first if low else 0
        print("# vwatch score_file v1 model=%s backend=%s windows=%d"
              % (m.model_id, fe.name, max(0, count - first)))
        thr = m.threshold
        for i in range(first, count):
            start = i * hop
            if low:
                low.upto(w, start + n)
            fe.compute(w, start)
            s = fe.score()
            if s != s or s * 0.0 != 0.0:  # NaN or infinite samples: not scored, not above
                print("score,%d,%d,nan,0" % (i, start))
            else:
                print("score,%d,%d,%.7g,%d" % (i, start, s, 1 if s > thr else 0))
    finally:
        w.close()
    return count


def run(model="/model.vwm", sensor=None, backend=None, speed=1.0, windows=None, out=print,
        report=None):
    """Run the detector until Ctrl-C, stop() or the end of a replay (see vwatch.runtime);
    report: MQTT per /vwatch.json by default (vwatch.mqtt), False for none."""
    from . import runtime

    return runtime.run(model, sensor, backend, speed, windows, out, report)


def status():
    """Print (and return) the state of the current or last run: see vwatch.runtime.status."""
    from . import runtime

    return runtime.status()


def stop():
    """Ask a running run() to stop after its current window (from a timer or another thread)."""
    from . import runtime

    runtime.stop()


def record(seconds, sensor=None, burst=64):
    """Print ``seconds`` of raw sensor samples as checked bursts (see vwatch.recorder)."""
    from . import recorder

    return recorder.record(seconds, sensor, burst)


def learn(seconds, model="/model.vwm", sensor=None, backend=None, out=print, template=None,
          speed=1.0, start=True, false_alarms_per_hour=None, compensate=True):
    """Learn normal operation for ``seconds`` on this board, write ``model``, then run the
    detector on it (start=False: return the learned model instead); see vwatch.learning."""
    from .learnrun import learn

    return learn(seconds, model, sensor, backend, out, template, speed, start,
                 false_alarms_per_hour, compensate)
