"""vwatch.score_file: score every window of a WAV recording (docs/score-lines.md).

Its own module so that a board running the detector does not hold this code and its names
(the package's __init__ loads it on first use).
"""


def score_file(model_path, wav_path, backend=None):
    """Score every window of a WAV recording; print the lines of docs/score-lines.md."""
    import gc

    from . import backend_class, check_recording
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
