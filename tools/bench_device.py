"""Device runtime benchmark: the two reference configurations on every MicroPython at hand.

A benchmark, not a test: it prints a table (README "Device runtime" holds a copy) and asserts
nothing. For each configuration (IMU: 3 axes at 952 Hz, N=256, hop 128, 16 bands + 3 stats,
d=57, heap 64K; seed: 8 channels at 20 kHz, N=1024, hop 512, 12 bands, d=96, heap 128K) and each
backend on each interpreter (pure and q15 on the stock unix port; ulab, pure and q15 on every
interpreter in $VWATCH_ULAB_MICROPYTHON), the package is precompiled with mpy-cross (as
deployed) and the runtime's own objects (vwatch.start.allocate: model, replay sensor, ring,
backend, alarm) process an int16 recording window by window, without printing:

- us/window: a whole window (poll the sensor into the ring, features, score, alarm), median
  of 5 batches, in the configuration's heap with the GC running, as in vwatch.run();
- bytes/window: gc.mem_alloc() growth over one window with the GC disabled (in a 32 MB heap,
  so the pure backend's boxed floats fit);
- live heap: gc.mem_alloc() after gc.collect() once everything is allocated (code included);
  peak heap: live heap + bytes/window, the most a window can need before the GC runs;
- window / FFTs: a whole window's time over that of the bare FFTs it contains (C real FFTs
  of N points: the pure backend's bit reversal + FFT + split, the q15 backend's the same in
  integers, or ulab's spectrogram), timed the same way in the same heap;
- vs pure: the pure backend's us/window on the same interpreter over this backend's.

    python tools/bench_device.py [--windows 40]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import scipy.io.wavfile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

from vibrawatch import features, modelfile, simulate  # noqa: E402

CONFIGS = {
    "IMU": dict(rate=952, channels=3, window=256, hop=128, bands=16, stats=7, heap="64K"),
    "seed": dict(rate=20000, channels=8, window=1024, hop=512, bands=12, stats=0, heap="128K"),
    # the seed configuration with the zoom block fit adds at 20 kHz (R = 16, N_z = 256), 8 + 4
    # bands a channel: the same d = 96; 160 KB: q15 and ulab start in 128 KB only with a
    # smaller driver than this one (tests/test_zoom.py)
    "seed+zoom": dict(rate=20000, channels=8, window=1024, hop=512, bands=8, stats=0,
                      heap="160K", zoom=(16, 256, 4)),
}

BOARD = """
import sys
sys.path.insert(0, %(mpy)r)
import gc, time, vwatch
from vwatch import runtime, start
from vwatch.replay import Replay
m, sensor, fe, ring, alarm = start.allocate(%(model)r, Replay(%(wav)r, speed=0, loop=True),
                                            %(backend)r, 0, runtime.Config, None)
start.unload('start')  # as run() does
del start
low = getattr(fe, 'low', None)  # the zoom block's low ring, fed as vwatch.run feeds it
def window():
    while not ring.ready():
        ring.fill(sensor)
    if low is not None:
        low.feed(ring, m.window - m.hop, m.window)
    fe.compute(ring, 0)
    alarm.step(fe.score())
    ring.advance()
for i in range(5):
    window()
gc.collect()
live = gc.mem_alloc()
W = %(windows)d
def median_us(fn):
    # microseconds per call: the median of 5 batches of W calls
    times = []
    for b in range(5):
        t0 = time.ticks_us()
        for i in range(W):
            fn()
        times.append(time.ticks_diff(time.ticks_us(), t0) / W)
    times.sort()
    return times[2]
us = median_us(window)
gc.collect()
gc.disable()
a = gc.mem_alloc()
try:
    window()
    per = gc.mem_alloc() - a
except MemoryError:  # more than this heap holds: measured again in a big one
    per = -1
gc.enable()
gc.collect()
# The bare FFTs, on the window's buffers, again and again (what they hold does not change
# the time: float arithmetic costs the same on any value, inf and NaN included).
n = m.window
C = m.channels
if fe.name == 'q15':
    k = fe.k
    def fft():
        k.bitrev(fe.z, n >> 1)
        s = 2
        while s <= n >> 1:
            fe.pr[k.SHIFT] = 1
            k.stage(fe.z, fe.tw, s, fe.pr)
            s <<= 1
        k.split(fe.z, fe.z, fe.tw, fe.pr)
elif fe.name == 'pure':
    def fft():
        fe.dsp.reverse(fe.z, n >> 1)
        fe.dsp.fft(fe.z, fe.tw, n)
        fe.dsp.power(fe.z, fe.tw, n)
elif fe.fft == 'spectrogram':
    from ulab import utils
    def fft():
        utils.spectrogram(fe.x, scratchpad=fe.sp, out=fe.lo)
else:
    from ulab import numpy as np
    def fft():
        np.fft.fft(fe.x)
t_fft = median_us(fft)
print('RESULT', fe.name, us, per, live, live + per, us / (C * t_fft))
"""


def write_inputs(folder, name, cfg):
    """A random but valid model and a short looping int16 recording for one configuration."""
    rng = np.random.default_rng(0)
    edges = features.default_band_edges(cfg["window"], cfg["bands"])
    nstats = bin(cfg["stats"]).count("1")
    r, nz, bz = cfg.get("zoom", (0, 0, 0))
    zoom = {}
    if r:
        zoom = dict(zoom_r=r, zoom_window=nz, zoom_edges=features.default_band_edges(nz, bz))
    d = cfg["channels"] * (cfg["bands"] + nstats + bz)
    a = rng.standard_normal((d, d)) / np.sqrt(d)
    lower = np.linalg.cholesky(a @ a.T + np.eye(d))
    model = modelfile.Model(
        sample_rate=cfg["rate"], window=cfg["window"], hop=cfg["hop"], channels=cfg["channels"],
        edges=np.asarray(edges, np.uint16), stats=cfg["stats"], epsilon=1e-6,
        mu=rng.normal(-4, 1, d).astype(np.float32),
        packed_l=np.concatenate([lower[j:, j] for j in range(d)]).astype(np.float32),
        threshold=float(2 * d), clear_threshold=float(d), **zoom)
    path = folder / (name + ".vwm")
    model.write(path)
    x = simulate.machine(1.0, cfg["rate"], cfg["channels"], seed=1)
    wav = folder / (name + ".wav")
    scipy.io.wavfile.write(wav, cfg["rate"], np.round(x / 4 * 32767).astype(np.int16))
    return path, wav, d


def compile_package(folder):
    exe = Path(sys.executable).parent / "mpy-cross"
    exe = str(exe) if exe.exists() else shutil.which("mpy-cross")
    (folder / "vwatch").mkdir(parents=True)
    for src in sorted((ROOT / "device" / "vwatch").glob("*.py")):  # all of it, as deployed
        subprocess.run([exe, "-march=x64", "-o", str(folder / "vwatch" / (src.stem + ".mpy")),
                        str(src)], check=True)


def measure(exe, mpy, model, wav, backend, heap, windows):
    code = BOARD % dict(mpy=str(mpy), model=str(model), wav=str(wav), backend=backend,
                        windows=windows)
    env = dict(os.environ, MICROPYPATH=".frozen")
    proc = subprocess.run([exe, "-X", "heapsize=" + heap, "-c", code], capture_output=True,
                          text=True, env=env, timeout=1800)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            _, name, us, per, live, peak, ratio = line.split()
            return float(us), int(per), int(live), int(peak), float(ratio)
    raise RuntimeError("%s %s failed:\n%s%s" % (exe, backend, proc.stdout[-2000:],
                                               proc.stderr[-2000:]))


def interpreters():
    """(label, executable, backends): the stock unix port, then each one with ulab."""
    stock = Path(sys.executable).parent / "micropython"
    out = [("stock", str(stock) if stock.exists() else shutil.which("micropython"),
            ("pure", "q15"))]
    for exe in os.environ.get("VWATCH_ULAB_MICROPYTHON", "").split(os.pathsep):
        if exe:
            out.append((exe, exe, ("ulab", "pure", "q15")))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=40, help="windows per timed batch")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        compile_package(tmp / "mpy")
        for name, cfg in CONFIGS.items():
            model, wav, d = write_inputs(tmp, name, cfg)
            for label, exe, backends in interpreters():
                for backend in backends:
                    # Time in the configuration's heap; allocation in a heap that holds it.
                    us, _, live, _, ratio = measure(exe, tmp / "mpy", model, wav, backend,
                                                    cfg["heap"], args.windows)
                    _, per, _, _, _ = measure(exe, tmp / "mpy", model, wav, backend, "32M", 3)
                    rows.append((name, d, cfg["heap"], label, backend, us, per, live,
                                 live + per, ratio))
                    print("  %s %s %s: %.0f us" % (name, label, backend, us), file=sys.stderr)
    pure = dict(((r[0], r[3]), r[5]) for r in rows if r[4] == "pure")
    print("| config | d | heap | interpreter | backend | us/window | bytes/window | live heap "
          "| peak heap | window / FFTs | vs pure |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %d | %s | %s | %s | %.0f | %d | %d | %d | %.2f | %.2f |"
              % (r + (pure[r[0], r[3]] / r[5],)))


if __name__ == "__main__":
    main()
