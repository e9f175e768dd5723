"""Start-up work of vwatch.run: size, check and allocate everything the loop needs.

Its own module so that compiling it (from source) and keeping its code are needed only while
run() starts: run() unloads it before the first window.
"""

import gc
import sys

from micropython import const

from . import _unload, check_source

_CODE = const(12000)  # bytes of the backend's and the runtime's code, roughly (64-bit port)


def _need(n, hop, c, b, d, backend, p=0, k=1):
    # Rough bytes a run needs: model arrays (K components), ring, backend buffers, their code.
    # b: bands, plus the zoom block's edges if any (an overestimate of a few bytes a band).
    model = 2 * (b + 1) + c + 600
    model += k * (4 * d + (2 * d * (d + 1) if p == 0 else 4 * (d + p * d + p)))
    ring = 2 * c * (n + min(hop, n, 256) + 32) + 200  # vwatch.ring's default slots
    if backend == "ulab":  # 3N floats (8 bytes on float64 builds), chunk buffers, views
        fe = 24 * n + 8 * d + 6000 + 64 * b + 320 * k  # views of each component's arrays
    elif backend == "q15":  # z 4N, sine table N/2, sums and logs, f, Q16 f and the score's
        fe = 5 * n + 12 * b + 24 * d + 8 * p + 4 * (d + p) * k + 1900  # words; 1.5 KB
        # of log tables; the exponents of the model's integers (q15_score.fixed)
    else:  # window 4N, sine table N, f and f - mu
        fe = 5 * n + 8 * d + 300
    return model + ring + fe + _CODE


def load(model):
    """A model file's vwatch.Model (the loader's code, about 5 KB, unloaded
    once used), or the loaded model given, as it is."""
    if isinstance(model, str):
        from .model import load

        model = load(model)
        _unload("model")
        _unload("modelcheck")
    return model


def _header(model):
    # (window, hop, channels, bands (with the zoom block's edges), features, PCA components,
    # Gaussian components K) of a model file's header (not checked) or a loaded model.
    if isinstance(model, str):
        from .model import header

        with open(model, "rb") as f:
            model = header(f.read(64))
    b = model.bands + (model.zoom_bands + 1 if model.zoom_r else 0)
    return model.window, model.hop, model.channels, b, model.d, model.p, model.k


_BACKENDS = (None, "auto", "pure", "ulab", "q15")


def _ring_buffer(model, sensor):
    # The ring's frames, sized from the model file's header, before anything else: the ring
    # is the largest buffer (20 KB at 8 x (1024 + 256) frames) and needs one free run of the
    # heap, which the loader's code and the model's small objects would cut into pieces.
    # Slots as vwatch.ring's default (and allocate's check). None when the header cannot be
    # read or is out of range: the loader then says what is wrong.
    try:
        n, hop, c = _header(model)[:3]
    except Exception:
        return None
    if not (16 <= n <= 4096 and 1 <= c <= 8 and hop >= 1):
        return None
    from array import array

    frames = n + min(hop, n, max(256, getattr(sensor, "_fifo", 0)))
    return array("h", range(c * frames))


def prepare(model, sensor, backend, speed, default_sensor):
    """The first half of run()'s allocation, in the order that measured best in a small heap:
    the ring's frames (an array, or None), the model's arrays (the loader's code is dropped
    once used), the sensor, checked against the model. The runtime builds the rest once this
    module's code is gone (vwatch.runtime._build)."""
    if backend not in _BACKENDS:
        from . import backend_class

        backend_class(backend)  # raises the ValueError that names the backends
    if sensor is not None:
        _unload("wav")  # a replay keeps only its file (a caller's own Wav objects keep theirs)
    gc.collect()
    buf = _ring_buffer(model, sensor)
    m = load(model)
    if m.n_train == 0 and m.estimator == 3:  # OAS, nothing learned: docs/model-format.md
        raise ValueError("model %s is a template (settings, nothing learned): learn on the "
                         "board first, vwatch.learn(seconds) or `vibrawatch learn`"
                         % m.model_id)
    if sensor is None:
        sensor = default_sensor(speed)
        _unload("wav")
    check_source(sensor, m)
    return buf, m, sensor


def _need_of(model, backend):
    # Estimate for the MemoryError message, from the file's header alone (no big arrays).
    try:
        n, hop, c, b, d, p, k = _header(model)
        from .zoom_need import need as zoom

        return _need(n, hop, c, b, d, backend or "pure", p, k) + zoom(model, backend)
    except Exception:
        return -1


def memory_message(e, model, backend):
    """What a MemoryError at start-up means: the need, the free heap, what to do."""
    gc.collect()
    free = gc.mem_free()
    used = gc.mem_alloc()
    return ("out of memory at start-up (%s): about %d bytes needed, %d free of a %d-byte heap; "
            "use a model with fewer features or a smaller window, or free the heap (fewer "
            "imports, a reset)" % (e, _need_of(model, backend), free, free + used))
