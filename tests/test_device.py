"""The board package vwatch on real MicroPython interpreters, against the reference.

Every test runs device code in a MicroPython subprocess under a 64 KB heap (`-X heapsize=64K`)
and compares with host/vibrawatch/reference.py in CPython, within docs/features.md's
tolerances. The pure backend runs from source (device/vwatch/*.py, compiled on the device), except for the
largest configuration. The ulab backend runs the package precompiled with mpy-cross, as a
board gets it: compiling the sources inside a 64 KB heap leaves it too fragmented for ulab's
2N-float scratchpad.
"""

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from device_support import (
    DEVICE_PKG, FEATURE_TOL, SCORE_TOL, Device, build_mpy, log_edges, parse_score_lines,
    random_model, ref_score, reference_features, run_features, signal, stats_count, write_wav,
)

RATE = 1000


@pytest.fixture(scope="session")
def _ulab_float_bytes():
    cache = {}

    def probe(interp):
        if interp.executable not in cache:
            out = interp.run("from ulab import numpy as np\nprint(np.zeros(1).itemsize)")
            cache[interp.executable] = int(out.split()[-1])
        return cache[interp.executable]

    return probe


@pytest.fixture
def dev(device, request, _ulab_float_bytes):
    backend, interp = device
    if backend == "pure":  # from source, on stock MicroPython or on a ulab build
        return Device("pure", interp, has_ulab=interp.name != "micropython")
    return Device("ulab", interp, request.getfixturevalue("precompiled_for")(interp),
                  _ulab_float_bytes(interp), has_ulab=True)


def make_case(tmp_path, kind, n, channels, stats, dtype, windows=2, full=False, hop=None,
              bands=8, seed=0):
    """WAV + model for one signal; returns (model, model path, wav path, reference features)."""
    hop = hop or n // 2
    frames = n + hop * (windows - 1) + hop // 3  # a partial window at the end is not scored
    x = write_wav(tmp_path / "rec.wav", signal(kind, n, channels, frames, seed), RATE, dtype)
    bands = min(bands, n // 2 - 1)
    edges = log_edges(n, bands)
    if full:  # the DC bin and the Nyquist bin inside the bands
        edges[0] = 0
        edges[-1] = n // 2 + 1
    power = float(np.mean((x - x.mean(axis=0)) ** 2)) or float(np.mean(x**2))
    eps = float(np.float32(1e-6 * power if power > 0 else 1e-9))
    key = (kind, n, channels, dtype, hop, windows, seed)
    ref = reference_features(key, x, n, hop, windows, edges, eps, stats)
    d = channels * (len(edges) - 1 + stats_count(stats))
    model = random_model(d, ref[0], sample_rate=float(RATE), window=n, hop=hop,
                         channels=channels, edges=np.array(edges, np.uint16), stats=stats,
                         epsilon=eps)
    model.write(tmp_path / "m.vwm")
    return model, tmp_path / "m.vwm", tmp_path / "rec.wav", ref


def assert_matches(model, ref, feats, scores):
    d = model.n_features
    for i, (rf, df, s) in enumerate(zip(ref, feats, scores)):
        assert len(df) == d, "window %d: %d features, expected %d" % (i, len(df), d)
        diff = np.max(np.abs(np.array(df) - np.array(rf)))
        assert diff <= FEATURE_TOL, "window %d: features differ by %g\nref %s\ndev %s" % (
            i, diff, rf, df)
        rs = ref_score(model, rf)
        assert abs(s - rs) <= SCORE_TOL * max(rs, d), "window %d: score %r, reference %r" % (
            i, s, rs)


CASES = [
    # kind, N, channels, stats, wav dtype, full band range
    ("gauss", 64, 8, 7, "float32", True),
    ("gauss", 256, 3, 7, "int16", False),
    ("silence", 256, 3, 7, "int16", True),
    ("dc", 256, 3, 7, "float32", True),
    ("sine_bin", 256, 1, 7, "int16", False),
    ("sine_between", 256, 3, 0, "float32", False),
    ("clipped", 256, 3, 7, "int16", True),
    ("gauss", 512, 8, 2, "int16", False),
    ("sine_bin", 1024, 1, 0, "float32", True),
    ("sine_between", 1024, 1, 7, "int16", False),
    ("gauss", 2048, 1, 7, "int16", True),
    ("clipped", 2048, 1, 5, "float32", False),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "%s-N%d-C%d-S%d-%s" % c[:5])
def test_features_and_scores_match_reference(dev, tmp_path, case):
    kind, n, channels, stats, dtype, full = case
    model, mpath, wpath, ref = make_case(tmp_path, kind, n, channels, stats, dtype, full=full)
    name, feats, scores = run_features(dev, mpath, wpath, len(ref), dev.heap_for(n, channels))
    assert name == dev.backend
    assert_matches(model, ref, feats, scores)


def test_score_file_lines(dev, tmp_path):
    # The IMU reference configuration: 3 axes, N = 256, hop 128, all statistics.
    model, mpath, wpath, ref = make_case(tmp_path, "gauss", 256, 3, 7, "int16", windows=4,
                                         bands=16)
    ref_scores = [ref_score(model, f) for f in ref]
    model.threshold = float(np.median(ref_scores))  # some windows above, some not
    model.clear_threshold = model.threshold / 2
    model.write(mpath)
    out = dev.run("import vwatch\nvwatch.score_file(%r, %r, %r)" % (str(mpath), str(wpath),
                                                                   dev.backend))
    head, rows = parse_score_lines(out)
    assert head == {"model": model.model_id, "backend": dev.backend, "windows": 4}
    assert [(i, start) for i, start, _, _ in rows] == [(i, i * 128) for i in range(4)]
    for (_, _, s, above), rs in zip(rows, ref_scores):
        assert abs(s - rs) <= SCORE_TOL * max(rs, model.n_features)
        assert above == (1 if rs > model.threshold else 0)
    assert {r[3] for r in rows} == {0, 1}


def test_score_file_largest_configuration_in_64k(dev, tmp_path, precompiled_for):
    # The seed rig's layout at its largest window: 8 channels, N = 2048, d = 64, run as
    # deployed (precompiled): compiling the sources on the device fragments a 64 KB heap
    # beyond what the 8 KB window and the 8 KB factor need (the pure backend from source
    # fits up to N = 1024 with 8 channels, see test_no_leak_and_allocation_per_window).
    dev = Device(dev.backend, dev.interp, precompiled_for(dev.interp), dev.float_bytes,
                 dev.has_ulab)
    n = 2048
    model, mpath, wpath, ref = make_case(tmp_path, "gauss", n, 8, 0, "int16", windows=2,
                                         hop=n)
    heap = dev.heap_for(n, 8)
    out = dev.run("import vwatch\nvwatch.score_file(%r, %r, %r)" % (str(mpath), str(wpath),
                                                                   dev.backend), heap=heap)
    head, rows = parse_score_lines(out)
    assert model.n_features == 64 and head["windows"] == 2
    for (_, _, s, _), f in zip(rows, ref):
        rs = ref_score(model, f)
        assert abs(s - rs) <= SCORE_TOL * max(rs, 64)


@pytest.mark.parametrize("n,channels", [(256, 3), (1024, 8)])
def test_no_leak_and_allocation_per_window(dev, tmp_path, n, channels):
    stats = 7 if channels < 8 else 0  # the seed layout with d = 64, as in its budget
    model, mpath, wpath, _ = make_case(tmp_path, "gauss", n, channels, stats, "int16",
                                       windows=1, hop=8)
    frames = n + 8 * 60
    write_wav(wpath, signal("gauss", n, channels, frames), RATE, "int16")
    code = """
import gc
import vwatch
from vwatch import model, wav
gc.collect()
m = model.load(%r)
fe = vwatch.features(m, %r)
w = wav.Wav(%r)
fe.compute(w, 0)
fe.score()
from array import array
heap = array('i', range(51))
gc.collect()
heap[0] = gc.mem_alloc()
for i in range(1, 51):
    fe.compute(w, i * m.hop)
    fe.score()
    gc.collect()
    heap[i] = gc.mem_alloc()
print('HEAP', ' '.join(str(v) for v in heap))
""" % (str(mpath), dev.backend, str(wpath))
    out = dev.run(code, heap=dev.heap_for(n, channels))
    heap = [int(v) for v in out.split("HEAP")[1].split()]
    # A conservative collector may keep one stale block alive now and then; a leak grows.
    assert heap[-1] - heap[0] <= 64 and max(heap) - heap[0] <= 256, heap
    # Allocation per window needs the collector off, so a heap big enough to hold it all.
    measure = """
import gc
import vwatch
from vwatch import model, wav
m = model.load(%r)
fe = vwatch.features(m, %r)
w = wav.Wav(%r)
fe.compute(w, 0)
fe.score()
gc.collect()
gc.disable()
base = gc.mem_alloc()
fe.compute(w, m.hop)
fe.score()
print('ALLOC', base, gc.mem_alloc())
""" % (str(mpath), dev.backend, str(wpath))
    out = dev.run(measure, heap="64M")
    base, top = [int(v) for v in out.split("ALLOC")[1].split()]
    print("[%s] N=%d C=%d d=%d: %d bytes allocated per window (heap after setup %d)"
          % (dev.backend, n, channels, model.n_features, top - base, base))


def test_reference_on_micropython_agrees_with_cpython(micropython):
    from vibrawatch import reference

    rng = np.random.default_rng(3)
    chans = [[float(v) for v in rng.standard_normal(64)] for _ in range(2)]
    edges = [0, 1, 3, 7, 15, 33]
    f = reference.features(chans, edges, 1e-6, 7)
    mu = [float(v) for v in rng.standard_normal(len(f))]
    lp = [float(v) for v in rng.uniform(0.1, 1.0, len(f) * (len(f) + 1) // 2)]
    s = reference.score(f, mu, lp)
    out = micropython.run("import reference\nf = reference.features(%r, %r, 1e-6, 7)\n"
                          "print(repr(f))\nprint(repr(reference.score(f, %r, %r)))"
                          % (chans, edges, mu, lp))
    lines = out.split("\n")
    mf = [float(v) for v in lines[0].strip("[]").split(",")]
    assert np.allclose(mf, f, rtol=1e-9, atol=1e-9)
    assert abs(float(lines[1]) - s) <= 1e-9 * max(1.0, s)


# ---- refusals: each must be the clear error, not an unrelated crash ----------------------

REFUSE = """
import vwatch
try:
    vwatch.score_file(%r, %r, %r)
except ValueError as e:
    print('REFUSED', type(e).__name__, e)
"""


def refused(dev, mpath, wpath):
    out = dev.run(REFUSE % (str(mpath), str(wpath), dev.backend))
    assert "REFUSED" in out, "not refused:\n" + out
    assert "score," not in out
    return out.split("REFUSED", 1)[1].strip()


def good_case(tmp_path):
    return make_case(tmp_path, "gauss", 64, 2, 7, "float32")


def mutate(path, offset, data):
    blob = bytearray(path.read_bytes())
    blob[offset : offset + len(data)] = data
    path.write_bytes(bytes(blob))


def test_refuses_truncated_model(dev, tmp_path):
    _, mpath, wpath, _ = good_case(tmp_path)
    mpath.write_bytes(mpath.read_bytes()[:-10])
    msg = refused(dev, mpath, wpath)
    assert msg.startswith("ModelError " + str(mpath))
    assert "but its header says" in msg and "truncated" in msg


def test_refuses_corrupt_model(dev, tmp_path):
    _, mpath, wpath, _ = good_case(tmp_path)
    size = mpath.stat().st_size
    blob = bytearray(mpath.read_bytes())
    blob[size - 20] ^= 0x40  # inside the packed factor
    mpath.write_bytes(bytes(blob))
    msg = refused(dev, mpath, wpath)
    assert "CRC mismatch" in msg and "corrupt" in msg
    # A flipped bit in the header's feature count is reported as corruption too.
    _, mpath, wpath, _ = good_case(tmp_path)
    blob = bytearray(mpath.read_bytes())
    blob[28] ^= 0x01
    mpath.write_bytes(bytes(blob))
    assert "CRC mismatch" in refused(dev, mpath, wpath)


def test_refuses_wrong_magic_and_version(dev, tmp_path):
    _, mpath, wpath, _ = good_case(tmp_path)
    mutate(mpath, 0, b"RIFF")
    msg = refused(dev, mpath, wpath)
    assert "not a vibrawatch model" in msg and "VWMF" in msg
    _, mpath, wpath, _ = good_case(tmp_path)
    mutate(mpath, 4, struct.pack("<H", 4))
    msg = refused(dev, mpath, wpath)  # its CRC no longer matches: corrupt, not newer
    assert "the file is corrupt" in msg and "version" not in msg
    blob = bytearray(mpath.read_bytes())  # a genuine newer file: its CRC right
    struct.pack_into("<I", blob, len(blob) - 4, zlib.crc32(bytes(blob[:-4])))
    mpath.write_bytes(bytes(blob))
    msg = refused(dev, mpath, wpath)
    assert "version 4" in msg and "reads versions 1, 2 and 3" in msg


def test_refuses_model_with_other_channels(dev, tmp_path):
    _, mpath, _, _ = good_case(tmp_path)
    write_wav(tmp_path / "three.wav", signal("gauss", 64, 3, 200), RATE, "int16")
    msg = refused(dev, mpath, tmp_path / "three.wav")
    assert "3 channels but model" in msg and "expects 2" in msg


def test_refuses_other_sample_rate_but_allows_small_drift(dev, tmp_path):
    _, mpath, _, _ = good_case(tmp_path)
    x = signal("gauss", 64, 2, 200)
    write_wav(tmp_path / "fast.wav", x, 1010, "int16")
    msg = refused(dev, mpath, tmp_path / "fast.wav")
    assert "sample rate 1010 Hz" in msg and "expects 1000 Hz" in msg
    write_wav(tmp_path / "drift.wav", x, 1004, "int16")  # 0.4 %: a crystal's drift
    out = dev.run("import vwatch\nvwatch.score_file(%r, %r, %r)"
                  % (str(mpath), str(tmp_path / "drift.wav"), dev.backend))
    assert parse_score_lines(out)[0]["windows"] == 5


def test_refuses_bad_wav_files(dev, tmp_path):
    _, mpath, wpath, _ = good_case(tmp_path)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not audio at all" * 10)
    msg = refused(dev, mpath, bad)
    assert msg.startswith("WavError " + str(bad)) and "not a WAV file" in msg
    # float64 samples: a WAV, but not one of the supported formats
    import scipy.io.wavfile

    scipy.io.wavfile.write(bad, RATE, np.zeros((200, 2)))
    msg = refused(dev, mpath, bad)
    assert "sample format 3 with 64 bits" in msg and "int16" in msg and "float32" in msg
    # a RIFF/WAVE file whose fmt chunk is cut short
    bad.write_bytes(b"RIFF" + struct.pack("<I", 20) + b"WAVEfmt " + struct.pack("<I", 8)
                    + b"\x01\x00\x02\x00")
    msg = refused(dev, mpath, bad)
    assert "fmt chunk" in msg


def test_refuses_recording_shorter_than_a_window(dev, tmp_path):
    _, mpath, _, _ = good_case(tmp_path)
    short = tmp_path / "short.wav"
    write_wav(short, signal("gauss", 64, 2, 63), RATE, "float32")
    msg = refused(dev, mpath, short)
    assert "63 frames, shorter than one window of 64" in msg


def test_refused_model_leaves_the_loaded_one_working(dev, tmp_path):
    model, mpath, wpath, ref = good_case(tmp_path)
    bad = tmp_path / "bad.vwm"
    bad.write_bytes(mpath.read_bytes()[:100])
    out = dev.run("""
import vwatch
from vwatch import model, wav
m = model.load(%r)
fe = vwatch.features(m, %r)
try:
    m = model.load(%r)
except model.ModelError as e:
    print('REFUSED', e)
fe.compute(wav.Wav(%r), 0)
print('SCORE', fe.score(), repr(m))
""" % (str(mpath), dev.backend, str(bad), str(wpath)))
    assert "REFUSED" in out and "but its header says" in out
    s = float(out.split("SCORE")[1].split()[0])
    assert abs(s - ref_score(model, ref[0])) <= SCORE_TOL * max(s, model.n_features)
    assert "<Model %s: N=64" % model.model_id in out


# ---- WAV reader details --------------------------------------------------------------------

def extensible_wav(path, x, rate):
    """float32 samples in a WAVE_FORMAT_EXTENSIBLE file with a LIST chunk of odd length."""
    frames, channels = x.shape
    data = x.astype("<f4").tobytes()
    guid = struct.pack("<H", 3) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * 4 * channels, 4 * channels,
                      32, 22, 32, 0) + guid
    listc = b"LIST" + struct.pack("<I", 5) + b"INFOx\x00"
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + listc + b"data"
            + struct.pack("<I", len(data)) + data)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_wav_extensible_and_unknown_chunks(dev, tmp_path):
    x = np.random.default_rng(5).uniform(-1, 1, (100, 3)).astype(np.float32)
    path = tmp_path / "ext.wav"
    extensible_wav(path, x, 8000)
    out = dev.run("""
from array import array
from vwatch.wav import Wav
w = Wav(%r)
print(w.rate, w.channels, w.frames)
a = array('f', range(40))
w.read(2, 50, 40, a)
for v in a:
    print('%%.9g' %% v)
""" % str(path))
    lines = out.split()
    assert lines[:3] == ["8000", "3", "100"]
    # float32 builds print floats with their own rounding: 1 ulp, not the exact value
    assert np.allclose(np.array(lines[3:], float), x[50:90, 2], rtol=2e-7, atol=0)


# ---- backends ------------------------------------------------------------------------------

def test_backend_choice(dev, tmp_path):
    _, mpath, _, _ = good_case(tmp_path)
    out = dev.run("""
import vwatch
from vwatch import model
m = model.load(%r)
print('AUTO', vwatch.features(m).name)
print('PURE', vwatch.features(m, 'pure').name)
try:
    vwatch.features(m, 'gpu')
except ValueError as e:
    print('ERR', e)
""" % str(mpath))
    assert "AUTO " + ("ulab" if dev.has_ulab else "pure") in out  # ulab wherever it imports
    assert "PURE pure" in out  # a ulab build runs the pure backend too
    assert "ERR backend 'gpu' is not one of 'auto', 'pure', 'ulab'" in out


def test_import_is_lazy(micropython):
    out = micropython.run("import sys, vwatch\nprint(sorted(k for k in sys.modules "
                          "if k.startswith('vwatch')))")
    assert out.strip() == "['vwatch']"


def test_ulab_fft_fallbacks(micropython_ulab, precompiled_for, tmp_path):
    # Without ulab.utils.spectrogram the backend uses np.fft.fft: a complex array in current
    # ulab, a (re, im) tuple in older builds. The tuple form is produced here by a wrapper
    # around this build's fft put in ulab_kernels.FFT, the only way to run it on a current ulab.
    model, mpath, wpath, ref = make_case(tmp_path, "sine_between", 256, 3, 7, "int16")
    dev = Device("ulab", micropython_ulab, precompiled_for(micropython_ulab))
    for mode in ("complex", "tuple"):
        code = ""
        if mode == "tuple":
            code = ("from ulab import numpy as np\nfrom vwatch import ulab_kernels\n"
                    "def _old(x):\n    c = np.fft.fft(x)\n    return np.real(c), np.imag(c)\n"
                    "ulab_kernels.FFT = _old\n")
        code += FEATURES_FFT % (str(mpath), str(wpath))
        out = dev.run(code)
        assert "FFT fft" in out
        feats = [[float(v) for v in ln.split()[1:]] for ln in out.splitlines()
                 if ln.startswith("F ")]
        scores = [float(ln.split()[1]) for ln in out.splitlines() if ln.startswith("S")]
        assert_matches(model, ref, feats, scores)


FEATURES_FFT = """
import vwatch
from vwatch import model, wav, backend_ulab
m = model.load(%r)
fe = backend_ulab.Features(m, fft='fft')
w = wav.Wav(%r)
print('FFT', fe.fft)
for i in range(2):
    fe.compute(w, i * m.hop)
    print('F', ' '.join('%%.9g' %% v for v in fe.f))
    print('S', '%%.9g' %% fe.score())
"""


def test_mip_packages_list_every_module_once():
    # Two mip packages: the core (device/vwatch/package.json) and the optional sensor drivers
    # (device/vwatch/sensors/package.json). Each lists every module of its folder exactly
    # once, from beside itself to the same place under vwatch/; together they hold them all.
    listed = []
    for folder in (DEVICE_PKG, DEVICE_PKG / "sensors"):
        pkg = json.loads((folder / "package.json").read_text())
        dests = [dest for dest, _ in pkg["urls"]]
        here = Path("vwatch", folder.relative_to(DEVICE_PKG))
        assert sorted(dests) == sorted((here / p.name).as_posix() for p in folder.glob("*.py"))
        assert all(dest == (here / src).as_posix() for dest, src in pkg["urls"])
        assert pkg["version"]
        listed += dests
    assert sorted(listed) == sorted(
        "vwatch/" + p.relative_to(DEVICE_PKG).as_posix() for p in DEVICE_PKG.rglob("*.py"))


# this file's scope
OWN = ("__init__", "model", "wav", "backend_pure", "pure_kernels", "backend_ulab", "ulab_kernels")


def test_device_sources_compile_with_mpy_cross(tmp_path):
    # What deploy does, for every module; plus the device style rules for the feature path.
    assert build_mpy(tmp_path) is not None
    for src in (DEVICE_PKG / (name + ".py") for name in OWN):
        text = src.read_text()
        assert "import typing" not in text and "dataclass" not in text
        assert not any(len(line) > 99 for line in text.splitlines()), src
    built = tmp_path / "vwatch"
    assert sorted(p.relative_to(built) for p in built.rglob("*") if p.is_file()) == sorted(
        p.relative_to(DEVICE_PKG).with_suffix(".mpy") for p in DEVICE_PKG.rglob("*.py"))

