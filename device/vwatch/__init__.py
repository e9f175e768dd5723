"""vwatch: vibration anomaly scoring on a MicroPython board (the device side of vibrawatch).

    import vwatch
    vwatch.score_file("/model.vwm", "/rec.wav")            # one line per window, see below
    vwatch.score_file("/model.vwm", "/rec.wav", "pure")    # force a backend
    vwatch.run()                      # the detector: /model.vwm, /replay.wav or a sensor
    vwatch.run(sensor=LSM9DS1(i2c))   # ... on a real sensor; Ctrl-C stops it
                                      # (from vwatch.sensors.lsm9ds1 import LSM9DS1)
    vwatch.status()                   # the last window's state (seq, score, alarm, drops)
    vwatch.release()                  # free the buffers a finished run keeps for the next
    vwatch.learn(600)                 # learn normal for 10 min, write /model.vwm, run it

Submodules load on first use, so `import vwatch` costs almost nothing:
model (model files), wav (recordings), backend_pure / backend_ulab / backend_q15 (features
and score), ring, replay, alarm, runtime (the detector), scorefile (score_file: its code is
not held while the detector runs). Output lines of score_file are specified in
docs/score-lines.md, those of run in docs/protocol.md.
"""

__version__ = "0.1.0"


class Model:
    """A loaded model: the fields of docs/model-format.md and its arrays. vwatch.model.load()
    fills one; run() and learn() use it as it is (learning fills in the learned fields and
    vwatch.modelwrite writes them). Here, in the package, so that the loader's code can be
    dropped once a model is loaded (an instance keeps only its class) and so that the class
    sits low in the heap, below a run's buffers. The fields are annotated (a bare annotation
    costs the board nothing: MicroPython's compiler drops it) and set by the loader."""

    # header (docs/model-format.md)
    version: int
    size: int  # bytes of the file
    rate: float  # sample rate, Hz
    window: int  # N
    p: int  # PCA components (0: the full packed L)
    hop: int
    channels: int
    bands: int
    stats: int  # bit set: rms, kurtosis, crest
    estimator: int
    d: int  # features
    alarm_k: int  # raise when k of the last n windows score above the threshold
    alarm_n: int
    eps: float
    threshold: float
    clear: float  # the clear threshold
    n_train: int  # windows learned from (0: a template, nothing learned)
    created: int
    crc: int
    model_id: str  # the CRC-32 as 8 hex digits
    # arrays: band edges (array 'H'); per component (mu, lp, w, a, g) in comps, component
    # 0's also as mu, lp (packed L, or None when p > 0), w, a, g (None when p = 0)
    edges: object
    comps: tuple
    mu: object
    lp: object
    w: object
    a: object
    g: object
    # v3 fields: a plain model's values, kept in the class, not in every instance's dict
    zoom_r = zoom_bands = zoom_window = flags = 0  # flags bit 0: learned on the board
    k = 1  # Gaussian components (operating modes)
    zoom_edges = channel_map = None
    v3 = False  # the file uses a v3 part (read by vwatch.modelcheck)

    def __repr__(self):
        return "<Model %s: N=%d hop=%d fs=%g C=%d B=%d stats=%d d=%d K=%d thr=%g>" % (
            self.model_id, self.window, self.hop, self.rate, self.channels, self.bands,
            self.stats, self.d, self.k, self.threshold)


def _unload(name):
    # Forget the submodule vwatch.<name> so that its code can be collected once its work is
    # done (importing it again loads it again).
    import sys

    sys.modules.pop("vwatch." + name, None)
    globals().pop(name, None)


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
        from .backend_pure import Features
    elif backend == "ulab":
        from .backend_ulab import Features
    elif backend == "q15":
        from .backend_q15 import Features
    else:
        raise ValueError("backend %r is not one of 'auto', 'pure', 'ulab', 'q15'; pick one of "
                         "those" % (backend,))
    return Features


def features(model, backend=None):
    """A feature backend for ``model``, its buffers allocated (see backend_class)."""
    return backend_class(backend)(model)


def check_source(source, model, frames=None):
    """Raise ValueError unless ``source`` (a sensor or a Wav) delivers the model's channels at
    its rate and, given ``frames``, holds one window (vwatch.source_check)."""
    from .source_check import check

    try:
        check(source, model, frames)
    finally:
        _unload("source_check")


def check_recording(model, wav):
    """Raise ValueError unless ``wav`` has the model's channels and rate and one window."""
    check_source(wav, model, wav.frames)


def score_file(model_path, wav_path, backend=None):
    """Score every window of a WAV recording; print the lines of docs/score-lines.md."""
    release()
    from .scorefile import score_file

    return score_file(model_path, wav_path, backend)


def run(model="/model.vwm", sensor=None, backend=None, speed=1.0, windows=None, out=print,
        report=None):
    """Run the detector until Ctrl-C, stop() or the end of a replay (see vwatch.runtime);
    report: MQTT per /vwatch.json by default (vwatch.mqtt), False for none."""
    from . import runtime

    return runtime.run(model, sensor, backend, speed, windows, out, report)


def release():
    """Let the last run's buffers go (run() keeps them for a next run on the same model)."""
    import sys

    runtime = sys.modules.get("vwatch.runtime")
    if runtime is not None:
        runtime.release()


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
    release()
    from . import recorder

    return recorder.record(seconds, sensor, burst)


def learn(seconds, model="/model.vwm", sensor=None, backend=None, out=print, template=None,
          speed=1.0, start=True, false_alarms_per_hour=None, compensate=True):
    """Learn normal operation for ``seconds`` on this board, write ``model``, then run the
    detector on it (start=False: return the learned model instead); see vwatch.learning."""
    release()
    from .learnrun import learn

    return learn(seconds, model, sensor, backend, out, template, speed, start,
                 false_alarms_per_hour, compensate)
