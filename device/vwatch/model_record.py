"""A loaded model: the fields of docs/model-format.md and its arrays, in a class of its own.

    from vwatch.model_record import Model
    m = vwatch.model.load("/model.vwm")   # a Model, filled by the loader
    m.window, m.threshold, m.lp           # see the fields below
    m                                     # <Model 1a2b3c4d: N=256 hop=128 fs=952 C=3 ... >

Its own module so that the loader's code (vwatch.model, vwatch.modelcheck) can be dropped
once a model is loaded: an instance keeps only this small class. vwatch.run() and
vwatch.learn() use the loaded instance as it is; learning fills in the learned fields and
vwatch.modelwrite writes them. The fields are annotated here (which costs the board nothing:
MicroPython's compiler drops bare annotations) and set by the loader.
"""


class Model:
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

    def __repr__(self):
        return "<Model %s: N=%d hop=%d fs=%g C=%d B=%d stats=%d d=%d K=%d thr=%g>" % (
            self.model_id, self.window, self.hop, self.rate, self.channels, self.bands,
            self.stats, self.d, self.k, self.threshold)
