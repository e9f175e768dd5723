"""The q15 backend (device/vwatch/backend_q15.py, q15_spectrum.py) on real MicroPython, against
the reference.

The backend runs precompiled (mpy-cross -march=x64, as deployed): its viper kernels compiled
from source on the device do not fit beside N = 2048 in 64 KB. Accuracy is judged per band in
dB, as a function of the band's level below the channel's total band power: fixed point has a
noise floor where float has none (docs/features.md, "q15 backend"). The backend itself
(backend_q15 with its kernels q15_spectrum and q15_score) also runs under CPython on integers
that fail on leaving the signed 32-bit range (what a 32-bit board needs), and that run is the
device's arithmetic, bit for bit.
"""

import math
import re
from array import array
from pathlib import Path

import numpy as np
import pytest

from device_support import DEVICE_PKG, Device, ref_score, run_features, stats_count
from test_device import make_case
from test_host_board_agree import board_scores, fitted, host_scores  # noqa: F401 (fixture)
from test_runtime import check_alarm_mirrors_host, configs, run_board  # noqa: F401 (fixture)
from vibrawatch import modelfile

# 64 KB, the budget of the 64-bit port (DESIGN): these drivers load a model and a recording and
# run the q15 backend on them (README, "Device runtime": Memory).
HEAP_64BIT = "64K"
HEAP_64BIT_N2048 = "72K"

DB = 10 / math.log(10)  # dB per unit of natural log in a power
# Measured bound on |feature error| in dB per band (docs/features.md, "q15 backend"): a band W
# bins wide whose reference power lies L dB below the channel's total band power is within
# BASE_DB + 20 log10(1 + sqrt(W 10^((FLOOR_DB - L) / 10))) dB: Q15 rounding acts like noise
# of FLOOR_DB per bin re the total (worst measured -76 dB; 3 dB of margin here).
BASE_DB = 0.02
FLOOR_DB = -73.0
STAT_TOL = 5e-3  # statistics features, natural log units
I16 = (-(1 << 15), (1 << 15) - 1)


@pytest.fixture(scope="module", params=["64-bit", "32-bit"])
def dev(request, micropython, device_mpy):
    # The stock unix port has 64-bit words; a 32-bit build (when named) has a board's.
    if request.param == "64-bit":
        return Device("q15", micropython, device_mpy)
    interp, mpy = request.getfixturevalue("micropython_32")
    return Device("q15", interp, mpy)


def bound_db(level_db, width):
    return BASE_DB + 20 * math.log10(1 + math.sqrt(width * 10 ** ((FLOOR_DB - level_db) / 10)))


def band_errors(model, ref, feats):
    """(level dB re the channel total, width, |error| dB) per band; max stats error."""
    nb = len(model.edges) - 1
    widths = [int(b) - int(a) for a, b in zip(model.edges[:-1], model.edges[1:])]
    per = nb + stats_count(model.stats)
    out = []
    stat_err = 0.0
    for rf, df in zip(ref, feats):
        for c in range(model.channels):
            r = np.array(rf[c * per : (c + 1) * per])
            q = np.array(df[c * per : (c + 1) * per])
            total = float(np.sum(np.exp(r[:nb])))
            for b in range(nb):
                out.append((DB * (r[b] - math.log(total)), widths[b], DB * abs(q[b] - r[b])))
            if per > nb:
                stat_err = max(stat_err, float(np.max(np.abs(q[nb:] - r[nb:]))))
    return out, stat_err


CASES = [
    # kind, N, channels, stats, wav dtype, full band range
    ("gauss", 64, 4, 7, "float32", True),
    ("gauss", 256, 3, 7, "int16", False),
    ("silence", 256, 2, 7, "int16", True),
    ("dc", 128, 2, 7, "float32", True),
    ("sine_bin", 256, 1, 7, "int16", False),
    ("sine_between", 512, 2, 7, "float32", True),
    ("clipped", 256, 3, 7, "int16", True),
    ("gauss", 1024, 2, 7, "int16", False),
    ("sine_bin", 1024, 1, 7, "float32", True),
    ("clipped", 2048, 1, 7, "float32", True),
    ("sine_between", 2048, 1, 7, "int16", False),
    ("gauss", 2048, 1, 5, "int16", True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "%s-N%d-C%d-S%d-%s" % c[:5])
def test_features_within_the_q15_bound(dev, tmp_path, case):
    kind, n, channels, stats, dtype, full = case
    model, mpath, wpath, ref = make_case(tmp_path, kind, n, channels, stats, dtype, full=full,
                                         bands=12)
    name, feats, scores = run_features(dev, mpath, wpath, len(ref), HEAP_64BIT)
    assert name == "q15"
    errs, stat_err = band_errors(model, ref, feats)
    worst = max(e - bound_db(lv, w) for lv, w, e in errs)
    print("%s: worst band error %.3g dB, margin to bound %.3g dB, stats %.2g" % (
        kind, max(e for _, _, e in errs), -worst, stat_err))
    for lv, w, e in errs:
        assert e <= bound_db(lv, w), "band at %.1f dB re total, %d bins: error %.3g dB > %.3g" % (
            lv, w, e, bound_db(lv, w))
    assert stat_err <= STAT_TOL
    if kind in ("silence", "dc"):  # exact: every band ln(eps), statistics as the reference
        assert np.max(np.abs(np.array(feats) - np.array(ref))) < 1e-5


# ---- vwatch.backend_q15 and its kernels (q15_spectrum, q15_score) run as they are, under CPython

class FloatSamples:
    """A source of float32 samples, as vwatch.wav.Wav is: read(ch, start, n, out)."""

    def __init__(self, x):
        self.x = array("f", x)

    def read(self, ch, start, n, out):
        out[0:n] = self.x[start : start + n]


def q15_window(x, edges, stats=7, sign_extend=False):
    """One window of float samples x through vwatch.backend_q15.Features.compute, run under
    CPython on the real q15_spectrum and q15_score (load_viper): every kernel intermediate a word
    that fails on leaving 32 bits, every int16 a kernel stores checked; ``sign_extend``: ptr32
    loads sign-extend (32-bit ports) or not (64-bit ones). Returns (band words, FFT stages
    halved, statistics words), what MODEL_DRIVER prints on the device."""
    import sys
    import types

    n, nb = len(x), len(edges) - 1
    pkg = types.ModuleType("vwatch_checked")  # the package backend_q15's `from . import` reads
    pkg.__path__ = []
    pkg.q15_spectrum = load_viper(Q15_SPECTRUM, sign_extend, int16=True)
    pkg.q15_score = load_viper(Q15_SCORE, sign_extend)
    model = types.SimpleNamespace(  # the device model's fields that backend_q15 reads
        window=n, bands=nb, stats=stats, d=nb + stats_count(stats), p=0, k=1, eps=1e-6,
        zoom_r=0, channels=1, edges=array("H", edges), comps=(), n_train=1)
    shim = types.ModuleType("micropython")
    shim.const = lambda v: v
    saved = {k: sys.modules.get(k) for k in ("micropython", "vwatch_checked")}
    sys.modules.update(micropython=shim, vwatch_checked=pkg)
    try:
        ns = {"__name__": "vwatch_checked.backend_q15", "__package__": "vwatch_checked"}
        exec(compile(BACKEND_Q15.read_text(), str(BACKEND_Q15), "exec"), ns)
        fe = ns["Features"](model)
        fe.compute(FloatSamples(x), 0)
    finally:
        for k, v in saved.items():
            if v is None:
                del sys.modules[k]
            else:
                sys.modules[k] = v
    k = pkg.q15_spectrum
    return list(fe.acc[: 2 * nb]), fe.shifts, tuple(fe.pr[k.S2HI : k.PEAK + 1])


def full_scale_inputs(n):
    t = np.arange(n)
    rng = np.random.default_rng(5)
    yield "square", np.where(t % 2 == 0, 1.0, -1.0)
    yield "slow square", np.where(t < n // 2, 1.0, -1.0)
    yield "sine on a bin", np.sin(2 * np.pi * (n // 8) * t / n)
    yield "nyquist sine", np.cos(np.pi * t)
    yield "quarter-rate complex", np.cos(np.pi * t / 2) + 0 * t
    yield "impulse", np.where(t == n // 2, 1.0, -1.0)
    yield "clipped noise", np.clip(4 * rng.standard_normal(n), -1, 1)
    yield "chirp", np.sign(np.sin(np.pi * t * t / n))


@pytest.mark.parametrize("n", [64, 256, 2048])
@pytest.mark.parametrize("sign_extend", [False, True], ids=["zero-extending", "sign-extending"])
def test_kernels_stay_inside_int32_on_full_scale_input(n, sign_extend):
    edges = [0, 1, 2, 4, n // 8, n // 2 + 1]
    for name, x in full_scale_inputs(n):
        x = x.astype(np.float32)
        acc, shifts, _ = q15_window(list(map(float, x)), edges, sign_extend=sign_extend)
        # and it computes the spectrum: band shares of the total within 1 % of numpy's
        y = (x - x.mean()) * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n))
        p = np.abs(np.fft.rfft(y.astype(np.float64))) ** 2
        want = np.array([p[edges[b] : edges[b + 1]].sum() for b in range(len(edges) - 1)])
        got = np.array([acc[2 * b] * 32768.0 + acc[2 * b + 1] for b in range(len(want))])
        if want.sum() > 0:
            want, got = want / want.sum(), got / got.sum()
            assert np.all(np.abs(got - want) <= 0.01 * want + 1e-5), (name, got, want)


@pytest.mark.parametrize("sign_extend", [False, True], ids=["zero-extending", "sign-extending"])
def test_conversions_return_the_largest_deviation_from_the_mean(sign_extend):
    # iconv and fconv track min and max as they convert, so the window needs no second pass
    # (q15_spectrum.center) for the shift: their answer is center's, on full-scale and odd inputs.
    k = load_viper(Q15_SPECTRUM, sign_extend, int16=True)
    rng = np.random.default_rng(3)
    for n in (64, 1024):
        pr = array("i", range(k.RAW + 1))
        pr[k.LOG2N] = n.bit_length() - 1
        pr[k.N] = n
        cases = [rng.integers(-32768, 32768, n), np.full(n, -32768), np.full(n, 32767),
                 np.where(np.arange(n) % 2, 32767, -32768), np.r_[np.zeros(n - 1), 5],
                 np.round(300 * np.sin(np.arange(n))) + 1000]
        for raw in cases:
            raw = raw.astype("<i2")
            # as a ring of 3 channels holds them, the window starting 5 frames before the
            # ring's end: the gather wraps
            ring = np.zeros((n + 8, 3), "<i2")
            rows = (np.arange(n) + n + 3) % (n + 8)
            ring[rows, 1] = raw
            buf = array("h", ring.tobytes())
            pr[k.WRAP] = len(buf)
            z = array("i", range(n))
            top = k.iconv(z, buf, int(rows[0]) * 3 + 1 | 3 << 20, pr)
            assert list(z) == [8 * int(v) + k._V_OFFSET for v in raw]
            assert pr[k.RAW] == int(np.abs(raw.astype(np.int64)).max())
            v = 8 * raw.astype(np.int64)
            mean = (int(v.sum()) + n // 2) >> pr[k.LOG2N]
            assert int(top) == int(k.center(z, n, pr)) == int(np.abs(v - mean).max())
            x = array("f", (raw / 32768.0 * 3.7).astype(np.float32))
            top = k.fconv(x, n, k.fexp(x, n), pr)
            assert int(top) == int(k.center(x, n, pr))


MODEL_DRIVER = """
import vwatch
from vwatch import model, wav
m = model.load(%(model)r)
fe = vwatch.features(m, 'q15')
fe.compute(wav.Wav(%(wav)r), 0)
print('A', ' '.join(str(fe.acc[i]) for i in range(2 * m.bands)))  # then the statistics
pr = fe.pr
print('T', fe.shifts)
print('S', pr[6], pr[7], pr[8], pr[9], pr[10])
"""


@pytest.mark.parametrize("kind,n", [("clipped", 256), ("sine_between", 2048), ("gauss", 64)])
def test_kernels_under_cpython_are_the_device_arithmetic_bit_for_bit(dev, tmp_path, kind, n):
    model, mpath, wpath, _ = make_case(tmp_path, kind, n, 1, 7, "int16", windows=1, full=True)
    # At N = 2048 the q15 tables need an 8 KB free run beside the loader's code, which this
    # driver keeps: 65 KB at a clean clone's path since the header record (stop 24), 64 before.
    heap = HEAP_64BIT if n < 2048 else HEAP_64BIT_N2048
    out = dev.run(MODEL_DRIVER % dict(model=str(mpath), wav=str(wpath)), heap=heap)
    lines = dict((ln[0], ln[2:].split()) for ln in out.splitlines())
    import scipy.io.wavfile

    _, pcm = scipy.io.wavfile.read(wpath)
    x = [float(v) / 32768 for v in pcm[:n]]
    acc, shifts, st = q15_window(x, [int(e) for e in model.edges])
    assert [int(v) for v in lines["A"]] == acc
    assert int(lines["T"][0]) == shifts
    assert tuple(int(v) for v in lines["S"]) == st


ALLOC_DRIVER = """
import gc
import vwatch
from vwatch import model, wav
m = model.load(%(model)r)
fe = vwatch.features(m, 'q15')
w = wav.Wav(%(wav)r)


def kernels(fe, k, z, pr, n):
    # locals only: a new global would grow the module's dict
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    e = k.fexp(z, n)
    k.fconv(z, n, e, pr)
    k.center(z, n, pr)
    fe._spectrum()
    b = gc.mem_alloc()
    gc.enable()
    return b - a


worst = 0
for i in range(4):
    fe.compute(w, i * m.hop)  # leaves this window's mean and shift in pr
    w.read(0, i * m.hop, m.window, fe.z)
    worst = max(worst, kernels(fe, fe.kernels, fe.z, fe.pr, m.window))
print('K', worst)
"""


def test_kernels_allocate_nothing_per_window(dev, tmp_path):
    model, mpath, wpath, _ = make_case(tmp_path, "gauss", 1024, 1, 7, "int16", windows=4)
    out = dev.run(ALLOC_DRIVER % dict(model=str(mpath), wav=str(wpath)), heap=HEAP_64BIT)
    got = dict((ln.split()[0], int(ln.split()[1])) for ln in out.splitlines())
    # From float samples to band sums: every kernel of the window (the source's read, the
    # B logarithms and the score box floats, as in the pure backend).
    assert got["K"] == 0, out


MARGIN = 0.02  # decisions may differ only when |s_ref - thr| <= MARGIN * max(thr, d)
# ... and 5 % for a model with bands 35 to 42 dB below the total: the simulated IMU of
# tests/test_runtime.py, whose scores differ by up to 2.7 % (docs/features.md, "q15 backend")
MARGIN_LOW_BANDS = 0.05


def test_detection_decisions_agree_with_the_host(dev, tmp_path):
    windows = 24
    model, mpath, wpath, ref = make_case(tmp_path, "gauss", 256, 3, 7, "int16",
                                         windows=windows, bands=16, seed=3)
    ref_scores = [ref_score(model, f) for f in ref]
    thr = float(np.median(ref_scores))
    _, _, scores = run_features(dev, mpath, wpath, windows, HEAP_64BIT)
    d = model.n_features
    print("largest score difference: %.3g of max(score, d)" % max(
        abs(s - rs) / max(rs, d) for s, rs in zip(scores, ref_scores)))
    for s, rs in zip(scores, ref_scores):
        if abs(rs - thr) > MARGIN * max(thr, d):
            assert (s > thr) == (rs > thr), (s, rs, thr)
        assert abs(s - rs) <= MARGIN * max(rs, d)


@pytest.mark.parametrize("which", [0, 1, 2], ids=["normal", "outer_race", "outer_race_int16"])
def test_decisions_agree_on_the_bundled_recordings(dev, fitted, which, tmp_path):
    # The real recordings of test_host_board_agree (fitted model, d = 45): vwatch.score_file
    # with q15 against `vibrawatch score` on the host.
    model, wavs = fitted
    host = host_scores(model, wavs[which], tmp_path)
    board = board_scores(dev.interp, dev.mpy_dir, "q15", model, wavs[which])
    assert len(board) == len(host) == 155
    d = 45
    threshold = modelfile.read(model).threshold
    worst = 0.0
    for (hi, hs, ha), (bi, start, bs, ba) in zip(host, board):
        assert bi == hi
        worst = max(worst, abs(bs - hs) / max(hs, d))
        if abs(hs - threshold) > MARGIN * max(threshold, d):
            assert ba == ha, (hi, hs, bs, threshold)
    print("largest score difference: %.3g of max(score, d)" % worst)
    assert worst <= MARGIN


# The model's q15 backend and a ring holding the WAV's first window as raw int16.
RING_SETUP = """
import gc
from array import array
import vwatch
from vwatch import model, wav
from vwatch.ring import Ring
m = model.load(%(model)r)
fe = vwatch.features(m, 'q15')
w = wav.Wav(%(wav)r)
n = m.window
c = m.channels
r = Ring(c, n, m.hop, scale=1.0 / 32768)
t = array('f', range(n))
for ch in range(c):
    w.read(ch, 0, n, t)
    for i in range(n):
        r.buf[i * c + ch] = int(t[i] * 32768)
r.count = n
"""

RING_DRIVER = RING_SETUP + """
fe.compute(r, 0)
print('R', ' '.join('%%.9g' %% v for v in fe.f))
fe.compute(w, 0)
print('W', ' '.join('%%.9g' %% v for v in fe.f))


def raw(fe, k, z, pr, n):
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for ch in range(c):
        k.iconv(z, r.buf, r.at(ch, 0) | c << 20, pr)
    b = gc.mem_alloc()
    gc.enable()
    return b - a


print('K', raw(fe, fe.kernels, fe.z, fe.pr, n))
"""


@pytest.mark.parametrize("kind,n", [("gauss", 256), ("sine_between", 1024), ("clipped", 64)])
def test_raw_int16_from_a_ring(dev, tmp_path, kind, n):
    # A ring hands over raw int16 (read_int16): same features as through floats, no heap.
    model, mpath, wpath, ref = make_case(tmp_path, kind, n, 3, 7, "int16", windows=1,
                                         full=True)
    # 128K: this driver holds a WAV reader, its scratch array and a ring besides the backend
    out = dev.run(RING_DRIVER % dict(model=str(mpath), wav=str(wpath)), heap="128K")
    got = dict((ln[0], ln[2:].split()) for ln in out.splitlines())
    ring = [[float(v) for v in got["R"]]]
    floats = [float(v) for v in got["W"]]
    errs, stat_err = band_errors(model, ref, ring)
    for lv, w, e in errs:
        assert e <= bound_db(lv, w), (lv, w, e)
    assert stat_err <= STAT_TOL
    assert np.max(np.abs(np.array(ring[0]) - floats)) < 1e-5  # int16 data: the same integers
    assert int(got["K"][0]) == 0


# ---- vwatch.q15_score (logs, features, score) run as it is, with checked integers ---------------

W32_RANGE = (-(1 << 31), (1 << 31) - 1)


class Word32(int):
    """An int whose every arithmetic result must fit a signed 32-bit word, as on a board."""

    def _ok(self, v):
        if not W32_RANGE[0] <= v <= W32_RANGE[1]:
            raise OverflowError("intermediate %d leaves the signed 32-bit range" % v)
        return Word32(v)


def _checked(op):
    return lambda a, b: a._ok(op(int(a), int(b)))


for _name, _op in [("add", lambda a, b: a + b), ("sub", lambda a, b: a - b),
                   ("mul", lambda a, b: a * b), ("lshift", lambda a, b: a << b),
                   ("rshift", lambda a, b: a >> b), ("and", lambda a, b: a & b),
                   ("or", lambda a, b: a | b), ("xor", lambda a, b: a ^ b)]:
    setattr(Word32, "__%s__" % _name, _checked(_op))
    setattr(Word32, "__r%s__" % _name, _checked(lambda a, b, op=_op: op(b, a)))
Word32.__neg__ = lambda a: a._ok(-int(a))


class Ptr:
    """A viper ptr16/ptr32 view: loads zero- or sign-extend (ports differ), stores truncate."""

    def __init__(self, buf, bits, sign_extend, int16=False):
        self.mv = memoryview(buf).cast("B").cast("H" if bits == 16 else "I")
        self.bits = bits
        self.int16 = int16 and bits == 16  # signed int16 values: see load_viper
        self.sx = sign_extend and not self.int16

    def __getitem__(self, i):
        v = self.mv[i]
        if self.sx and v >> (self.bits - 1):
            v -= 1 << self.bits
        return Word32(v)

    def __setitem__(self, i, v):
        if self.int16 and not I16[0] <= v <= I16[1]:
            raise OverflowError("stored value %d leaves int16" % v)
        self.mv[i] = int(v) & ((1 << self.bits) - 1)


def load_viper(path, sign_extend, int16=False):
    """Execute a viper module under CPython: decorators and const() vanish, int() and the
    pointer types make checked integers and views (each function's ptr arguments are wrapped
    on the way in, from its annotations). ``int16``: the ptr16 views hold signed int16 values
    (q15_spectrum's; q15_score's hold raw halves): a store outside int16 fails, and loads
    zero-extend, as q15_spectrum's sign extension by hand, (v ^ 0x8000) - 0x8000, needs."""
    import inspect
    import sys
    import types

    mp = types.ModuleType("micropython")
    mp.const = lambda x: x
    ns = {}

    def viper(fn):
        sig = inspect.signature(fn)

        def call(*args):
            wrapped = []
            for a, p in zip(args, sig.parameters.values()):
                if p.annotation in ("ptr16", "ptr32") and not isinstance(a, Ptr):
                    a = Ptr(a, int(p.annotation[3:]), sign_extend, int16)
                elif isinstance(a, int) and not isinstance(a, Word32):
                    a = Word32(a)
                wrapped.append(a)
            return fn(*wrapped)

        return call

    mp.viper = viper
    saved = sys.modules.get("micropython")
    sys.modules["micropython"] = mp
    try:
        src = "from __future__ import annotations\n" + Path(path).read_text()
        ns.update(int=Word32,
                  ptr16=lambda o: o if isinstance(o, Ptr) else Ptr(o, 16, sign_extend, int16),
                  ptr32=lambda o: o if isinstance(o, Ptr) else Ptr(o, 32, sign_extend))
        exec(compile(src, str(path), "exec"), ns)
    finally:
        if saved is None:
            del sys.modules["micropython"]
        else:
            sys.modules["micropython"] = saved
    return types.SimpleNamespace(**{k: v for k, v in ns.items() if not k.startswith("__")})


VWATCH = Path(__file__).resolve().parents[1] / "device" / "vwatch"
Q15_SCORE = VWATCH / "q15_score.py"
Q15_SPECTRUM = VWATCH / "q15_spectrum.py"
BACKEND_Q15 = VWATCH / "backend_q15.py"
OFF = 1 << 25


def q16(x):
    return int(math.floor(x * 65536 + 0.5))


def tables():
    from array import array

    lt = array("H", [int(math.floor(32768 * math.log(1 + i / 256) + 0.5)) for i in range(257)])
    st = array("H", [int(math.floor(32768 * math.log(1 + math.exp(-j / 32)) + 0.5))
                     for j in range(513)])
    return lt, st


def packed(lower):
    """Column j of a lower-triangular matrix from row j down, columns in order (the model's L)."""
    d = len(lower)
    return [float(lower[i][j]) for j in range(d) for i in range(j, d)]


def run_score(k2, lp, mu, fq_q16):
    """q15_score.score of a learned model (L made integers in place once, as backend_q15 does)
    and of a model being learned (L in floats, a column at a time): the same bits, returned
    once."""
    from array import array

    d = len(mu)
    got = []
    for fixed_first in (True, False):
        sv = array("f", [0.0])
        lq, le = array("f", lp), array("i", [0] * d)
        if fixed_first:
            k2.fixed(lq, d, 1, d, le)
        k2.score(lq, le if fixed_first else None, array("f", mu),
                 array("i", [v + OFF for v in fq_q16]), array("i", [0] * (4 * d)), d, sv)
        got.append(sv[0])
    assert got[0] == got[1], got
    return got[0]


@pytest.mark.parametrize("sign_extend", [False, True], ids=["zero-extending", "sign-extending"])
def test_q15_score_stays_inside_int32_at_the_extremes(sign_extend):
    # vwatch.q15_score itself, run under CPython with integers that fail on leaving 32 bits, at its
    # documented input limits; both load behaviours of ptr16/ptr32 give the same results.
    from array import array

    k2 = load_viper(Q15_SCORE, sign_extend)
    lt, st = tables()
    # logs: two words each < 2^30 (the most any band or statistic sum reaches)
    pairs = [(0, 0), (0, 1), (0, 0x7FFF), (1, 0), (0xFFFF, 0x7FFF), (0x10000, 0),
             ((1 << 30) - 1, (1 << 30) - 1), (12345, 678), (0, (1 << 30) - 1)]
    acc = array("i", [w for p in pairs for w in p])
    lnv = array("i", [0] * len(pairs))
    k2.logs(acc, len(pairs), lnv, lt)
    for (hi, lo), got in zip(pairs, lnv):
        a = hi * 32768 + lo
        if a == 0:
            assert got == 0
        else:
            assert abs(got - 1 - math.log(a) * 65536) <= 2, (hi, lo, got)
    # chan: the scalings' extremes (shift e, halved stages T, float exponent, eps)
    nb = 3
    for e, t, ku, eps in [(-14, 0, -286, 1.2e-38), (5, 11, 220, 1e3), (0, 4, -30, 1e-9),
                          (-3, 0, 0, 1e-20)]:
        lnv = array("i", [0, 1, q16(31 * math.log(2)) + 1, q16(44 * math.log(2)) + 1, 1,
                          q16(30 * math.log(2)) + 1])
        pr = array("i", [0] * k2.SIZE)
        n, l2n = 4096, 12
        pr[k2.NB], pr[k2.STATS], pr[k2.LOG2N], pr[k2.POS] = nb, 7, l2n, 0
        pr[k2.E], pr[k2.T], pr[k2.KU] = e + OFF, t, ku + OFF
        cu = q16(2 * math.log(0.7))
        pr[k2.CU] = cu + OFF
        pr[k2.LNORM] = q16(math.log(64 / (3 * n * n))) + OFF
        pr[k2.LE] = q16(math.log(eps)) + OFF
        fq = array("i", [0] * (nb + 3))
        k2.chan(lnv, pr, st, fq)
        # the same in floats
        lu = cu / 65536 + ku * math.log(2)
        lns = [(v - 1) / 65536 if v else -math.inf for v in lnv]
        le = math.log(eps)

        def lse(a, b):
            return max(a, b) + math.log1p(math.exp(-abs(a - b))) if a > -math.inf else b

        cb = math.log(64 / (3 * n * n)) + lu + 2 * (t + e + 1) * math.log(2)
        want = [lse(a + cb, le) for a in lns[:nb]]
        m2 = lns[nb] + lu + (2 * e - l2n) * math.log(2)
        m4 = lns[nb + 1] + 2 * lu + (30 + 4 * e - l2n) * math.log(2)
        pk = lns[nb + 2] + lu + 2 * e * math.log(2)
        want += [lse(m2, le) / 2, lse(m4, 2 * le) - lse(2 * m2, 2 * le),
                 (lse(pk, le) - lse(m2, le)) / 2]
        got = [(v - OFF) / 65536 for v in fq]
        assert np.allclose(got, want, rtol=0, atol=1e-4), (e, t, ku, eps, got, want)
        # floats: the float32 of each Q16 value, exactly
        f = array("f", [0.0] * len(fq))
        k2.floats(fq, f, len(fq))
        assert list(f) == [float(np.float32(v)) for v in got]
    # and an ordinary one: L with a wide dynamic range, f - mu of either sign
    rng = np.random.default_rng(7)
    d = 40
    lower = np.tril(rng.standard_normal((d, d)) * 10.0 ** rng.uniform(-3, 2, (d, d)))
    mu = rng.uniform(-30, 5, d).astype(np.float32)
    fq = [q16(x) for x in mu + rng.standard_normal(d) * 0.5]
    s = run_score(k2, packed(lower.astype(np.float32)), list(map(float, mu)), fq)
    vv = np.array(fq) / 65536 - mu.astype(np.float64)
    want = float(np.sum((lower.astype(np.float32).T @ vv) ** 2))
    assert abs(s - want) <= 1e-4 * want, (s, want)


def test_q15_score_score_stays_inside_int32_for_the_largest_model():
    # d = 1000 (the most backend_q15 scores in integers), every product at its largest and of one
    # sign, so the top accumulator word grows as fast as it can.
    k2 = load_viper(Q15_SCORE, False)
    d = 1000
    lp = [1.9999999] * (d * (d + 1) // 2)
    s = run_score(k2, lp, [-200.0] * d, [(1 << 23) - 1] * d)  # |f - mu| clamped to 2^23 - 1
    v = ((1 << 23) - 1) / 65536
    want = sum(((d - j) * 1.9999999 * v) ** 2 for j in range(d))
    assert abs(s - want) <= 2e-4 * want


KERNEL_DRIVER = """
from array import array
from vwatch import q15_score
lt = array('H', %(lt)r)
st = array('H', %(st)r)
acc = array('i', %(acc)r)
lnv = array('i', range(%(nl)d))
q15_score.logs(acc, %(nl)d, lnv, lt)
print('L', ' '.join(str(v) for v in lnv))
pr = array('i', %(pr)r)
fq = array('i', range(%(d)d))
for ch in range(%(channels)d):
    pr[q15_score.POS] = ch * %(per)d
    q15_score.chan(lnv, pr, st, fq)
print('Q', ' '.join(str(v) for v in fq))
f = array('f', range(%(d)d))
q15_score.floats(fq, f, %(d)d)
print('F', ' '.join(str(v) for v in array('I', bytes(f))))
sv = array('f', [0.0])
lf = array('f', %(lp)r)
lp = array('f', lf)
le = array('i', range(%(d)d))
q15_score.fixed(lp, %(d)d, 1, %(d)d, le)
q15_score.score(lp, le, array('f', %(mu)r), fq, array('i', range(%(w)d)), %(d)d, sv)
print('S', array('I', bytes(sv))[0])
q15_score.score(lf, None, array('f', %(mu)r), fq, array('i', range(%(w)d)), %(d)d, sv)
print('U', array('I', bytes(sv))[0])
a = array('f', %(a)r)
ae = array('i', range(%(p)d))
q15_score.fixed(a, %(d)d, 0, %(p)d, ae)
q15_score.lowrank(array('f', %(w8)r), a, ae, array('f', %(g)r), array('f', %(mu)r), fq,
             array('i', range(%(w2)d)), %(d)d, %(p)d, sv)
print('P', array('I', bytes(sv))[0])
"""


def test_q15_score_under_cpython_is_the_device_arithmetic_bit_for_bit(dev):
    # What the extremes test proves about the CPython run holds for the board only if both
    # compute the same bits: logs, features, floats and score of random inputs, compared.
    from array import array

    rng = np.random.default_rng(11)
    nb, channels, stats = 6, 2, 7
    per = nb + 3
    d = channels * per
    lt, st = tables()
    acc = [int(v) for v in rng.integers(0, 1 << 20, 2 * (nb + 3))]
    acc[4:6] = [0, 0]  # an empty band
    k2 = load_viper(Q15_SCORE, False)
    pr = [0] * k2.SIZE
    pr[k2.NB], pr[k2.STATS], pr[k2.LOG2N] = nb, stats, 10
    pr[k2.E], pr[k2.T], pr[k2.KU] = -2 + OFF, 3, -36 + OFF
    pr[k2.CU], pr[k2.LNORM], pr[k2.LE] = (q16(2 * math.log(0.8)) + OFF,
                                          q16(math.log(64 / (3 * 1024**2))) + OFF,
                                          q16(math.log(1e-7)) + OFF)
    lower = np.tril(rng.standard_normal((d, d))).astype(np.float32)
    lp = packed(lower)
    mu = [float(np.float32(v)) for v in rng.uniform(-20, 0, d)]
    p = 3  # and a low-rank form: w > 0, g < 0
    w8 = [float(np.float32(v)) for v in rng.uniform(0.5, 50, d)]
    a = [float(np.float32(v)) for v in rng.standard_normal(p * d)]
    g = [float(np.float32(v)) for v in -rng.uniform(0.01, 0.1, p)]
    out = dev.run(KERNEL_DRIVER % dict(lt=list(lt), st=list(st), acc=acc, nl=nb + 3, pr=pr, d=d,
                                       channels=channels, per=per, lp=lp, mu=mu, w=4 * d, w8=w8,
                                       a=a, g=g, w2=4 * d + 2 * p, p=p))
    got = dict((ln[0], [int(v) for v in ln[2:].split()]) for ln in out.splitlines())
    # the same in CPython
    lnv = array("i", [0] * (nb + 3))
    k2.logs(array("i", acc), nb + 3, lnv, lt)
    pra = array("i", pr)
    fq = array("i", [0] * d)
    for ch in range(channels):
        pra[k2.POS] = ch * per
        k2.chan(lnv, pra, st, fq)
    f = array("f", [0.0] * d)
    k2.floats(fq, f, d)
    sv = array("f", [0.0])
    lq, le = array("f", lp), array("i", [0] * d)
    k2.fixed(lq, d, 1, d, le)
    k2.score(lq, le, array("f", mu), fq, array("i", [0] * (4 * d)), d, sv)
    assert got["L"] == list(lnv)
    assert got["Q"] == list(fq)
    assert got["F"] == list(array("I", bytes(f)))
    assert got["S"] == got["U"] == [array("I", bytes(sv))[0]]  # learned and float L alike
    aq, ae = array("f", a), array("i", [0] * p)
    k2.fixed(aq, d, 0, p, ae)
    k2.lowrank(array("f", w8), aq, ae, array("f", g), array("f", mu), fq,
               array("i", [0] * (4 * d + 2 * p)), d, p, sv)
    assert got["P"] == [array("I", bytes(sv))[0]]


WINDOW_ALLOC_DRIVER = RING_SETUP + """
fe.compute(r, 0)  # the first window meets the source (once per source)
fe.mahal()
first = fe.sv[0]


def windows(fe, r, count):
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for i in range(count):
        fe.compute(r, 0)
        fe.mahal()
    b = gc.mem_alloc()
    gc.enable()
    return b - a


print('A', windows(fe, r, 5))
print('S', first, fe.sv[0], fe.score())
"""


def as_pca(model, center, p=4, seed=0):
    """The model with a PCA reduction (format v2) fitted on features scattered around
    ``center``: a real low-rank structure plus noise."""
    from vibrawatch.pca import PCAPrecision

    d = model.n_features
    rng = np.random.default_rng(seed)
    x = (np.asarray(center) + 0.3 * rng.standard_normal((8 * d, p)) @ rng.standard_normal((p, d))
         + 0.05 * rng.standard_normal((8 * d, d)))
    est = PCAPrecision(p, "ledoitwolf").fit(x)
    model.mu = est.location_.astype(np.float32)
    model.packed_l = None
    model.w, model.a, model.g = (est.w_.astype(np.float32), est.a_.astype(np.float32),
                                 est.g_.astype(np.float32))
    return model


@pytest.mark.parametrize("form", ["cholesky", "pca"])
def test_a_whole_window_allocates_nothing(dev, tmp_path, form):
    # Features and score of a window from a ring (the detector's path): zero bytes with the
    # GC disabled, for both forms of model. (score() itself returns a float, which boxes one
    # on most ports.)
    model, mpath, wpath, ref = make_case(tmp_path, "gauss", 1024, 3, 7, "int16", windows=1)
    if form == "pca":  # fitted around a point near the window, which then scores about d
        rng = np.random.default_rng(1)
        as_pca(model, np.array(ref[0]) + 0.15 * rng.standard_normal(len(ref[0]))).write(mpath)
    out = dev.run(WINDOW_ALLOC_DRIVER % dict(model=str(mpath), wav=str(wpath)), heap="128K")
    got = dict((ln[0], ln[2:].split()) for ln in out.splitlines())
    assert int(got["A"][0]) == 0, out
    first, again, returned = (float(v) for v in got["S"])
    assert first == again == returned  # the same window scores the same, however asked
    rs = float(model.mahalanobis(np.array(ref[0])[None, :])[0])
    print("%s: q15 %.6g, reference %.6g" % (form, first, rs))
    assert abs(first - rs) <= MARGIN * max(rs, model.n_features)


HAS_FPU_DRIVER = """
import vwatch
from vwatch.fpu import has_fpu
for m in %(machines)r:
    print(int(has_fpu(m)))
print(int(has_fpu()), vwatch.backend_class().name)
"""

# sys.implementation._machine of real boards ("<board> with <MCU>", MicroPython's ports)
MACHINES = [
    ("Raspberry Pi Pico with RP2040", False),
    ("Raspberry Pi Pico2 with RP2350", True),
    ("Raspberry Pi Pico2 with RP2350-RISCV", False),
    ("ESP32C3 module with ESP32C3", False),
    ("ESP32S2 module with ESP32-S2FN4R2", False),
    ("Generic ESP32S3 module with ESP32S3", True),
    ("Generic ESP32 module with ESP32", True),
    ("ESP module with ESP8266", False),
    ("Arduino Nano 33 BLE Sense with NRF52840", True),
    ("micro:bit with NRF51822", False),
    ("Adafruit ItsyBitsy M0 Express with SAMD21G18A", False),
    ("Adafruit ItsyBitsy M4 Express with SAMD51G19A", True),
    ("NUCLEO-F091RC with STM32F091RCT6", False),
    ("NUCLEO-L073RZ with STM32L073RZT6", False),
    ("PYBv1.1 with STM32F405RG", True),
    ("Teensy 4.0 with MIMXRT1062DVJ6A", True),
    ("linux [GCC 12.2.0] version", True),
]


def test_auto_picks_q15_where_the_mcu_has_no_fpu(micropython):
    out = micropython.run(HAS_FPU_DRIVER % dict(machines=[m for m, _ in MACHINES]))
    lines = out.split("\n")
    assert [bool(int(v)) for v in lines[: len(MACHINES)]] == [f for _, f in MACHINES]
    fpu, name = lines[len(MACHINES)].split()
    # the stock unix port runs on an x86-64 or ARM64 host: it has an FPU, and no ulab
    assert (fpu, name) == ("1", "pure")


@pytest.mark.parametrize("name,windows", [("imu", 3000), ("seed", 300)])
def test_the_detector_runs_on_q15(dev, configs, name, windows):  # noqa: F811 (fixture)
    # vwatch.run with the q15 backend (what `auto` picks on an FPU-less board) on the two
    # reference configurations of tests/test_runtime.py, in their heaps, precompiled.
    cfg, model_path, wav, host = configs[name]
    model = modelfile.read(model_path)
    d = model.n_features
    run = run_board(dev.interp, dev.mpy_dir, "q15", model_path, wav, cfg["heap"], loop=True,
                    windows=windows, every=windows // 10)
    assert run.start["backend"] == "q15" and run.stop == windows - 1
    assert not (run.column(3) & 2).any() and not run.column(4).any()  # finite, none dropped
    run.assert_no_leak(10)
    n, hop, period = cfg["window"], cfg["hop"], cfg["loop_hops"] * cfg["hop"]
    worst = 0.0
    thr = model.threshold
    for seq, score, *_ in run.windows:
        start = seq * hop % period
        if start + n <= period:  # inside one pass of the looped recording: the host's window
            hs = host[start // hop]
            worst = max(worst, abs(score - hs) / max(hs, d))
            if abs(hs - thr) > MARGIN_LOW_BANDS * max(thr, d):
                assert (score > thr) == (hs > thr), (seq, score, hs, thr)
    assert worst <= MARGIN_LOW_BANDS
    check_alarm_mirrors_host(run, model)
    print("%s q15: %d windows, median %d us/window, heap used %s of %s, worst score "
          "difference %.2g of max(s, d)" % (name, windows, np.median(run.column(5)),
                                             run.start["heap_used"], cfg["heap"], worst))


def run_lowrank(k2, w, a, g, mu, fq_q16):
    from array import array

    d, p = len(mu), len(g)
    got = []
    for fixed_first in (True, False):  # as run_score
        sv = array("f", [0.0])
        aq, ae = array("f", a), array("i", [0] * p)
        if fixed_first:
            k2.fixed(aq, d, 0, p, ae)
        k2.lowrank(array("f", w), aq, ae if fixed_first else None, array("f", g),
                   array("f", mu), array("i", [v + OFF for v in fq_q16]),
                   array("i", [0] * (4 * d + 2 * p)), d, p, sv)
        got.append(sv[0])
    assert got[0] == got[1], got
    return got[0]


@pytest.mark.parametrize("sign_extend", [False, True], ids=["zero-extending", "sign-extending"])
def test_q15_score_lowrank_stays_inside_int32_and_is_accurate(sign_extend):
    # The PCA form, diag(w) + A^T diag(g) A, under checked integers: at its limits (d = 1000,
    # |f - mu| at the clamp, every product of one sign) and on a real PCA fit.
    from test_pca import pca_model

    k2 = load_viper(Q15_SCORE, sign_extend)
    d, p = 1000, 2
    v = ((1 << 23) - 1) / 65536
    s = run_lowrank(k2, [3.9e3] * d, [1.9999999] * (p * d), [-1e-3, -2e-3], [-200.0] * d,
                    [(1 << 23) - 1] * d)
    want = d * 3.9e3 * v * v - 3e-3 * (d * 1.9999999 * v) ** 2
    assert abs(s - want) <= 1e-3 * want, (s, want)
    model = pca_model(channels=2, bands=12, stats=7)
    rng = np.random.default_rng(3)
    for scale in (0.3, 1.0, 3.0):  # normal windows and far-off ones
        f = model.mu + scale * rng.standard_normal(model.n_features)
        fq = [q16(x) for x in f]
        got = run_lowrank(k2, list(map(float, model.w)), list(map(float, model.a.ravel())),
                          list(map(float, model.g)), list(map(float, model.mu)), fq)
        want = float(model.mahalanobis(np.array(fq)[None, :] / 65536)[0])
        assert abs(got - want) <= 1e-3 * want, (scale, got, want)


def _slot_consts(module):
    """The public const()s of a q15 module: its slots of the parameter array pr, and SIZE."""
    text = (DEVICE_PKG / (module + ".py")).read_text()
    found = re.findall(r"^([A-Z][A-Z0-9_]*) = const\((-?(?:0x)?[0-9A-Fa-f]+)\)", text, re.M)
    return {name: int(value, 0) for name, value in found}


def test_q15_modules_agree_on_the_parameter_slots_they_share():
    # viper inlines only a module's own const()s, so q15_score repeats the slots it reads of
    # q15_spectrum's (README, "Duplication left on purpose"): equal values, and no slot used
    # by the two modules under two names.
    spectrum, score = _slot_consts("q15_spectrum"), _slot_consts("q15_score")
    size = score.pop("SIZE")
    shared = set(spectrum) & set(score)
    assert shared == {"STATS", "NB", "LOG2N"}
    assert all(spectrum[name] == score[name] for name in shared)
    by_slot = {}
    for name, slot in list(spectrum.items()) + list(score.items()):
        assert 0 <= slot < size, (name, slot, size)
        assert by_slot.setdefault(slot, name) == name, (slot, by_slot[slot], name)
