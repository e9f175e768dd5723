"""Device benchmark: instructions per window on qemu's Cortex-M3 and Cortex-M7, and memory.

A benchmark, not a test: it prints a table (README "Device runtime" holds a copy) and asserts
nothing. Two reference configurations (IMU: 3 axes at 952 Hz, N=256, hop 128, 16 bands +
3 stats, d=57; seed: 8 channels at 20 kHz, N=1024, hop N, 12 bands, d=96), a random valid
model and a simulated int16 recording each, and every backend (pure, ulab, q15) on:

- qemu's Cortex-M3 (no FPU) and Cortex-M7 (FPU), MicroPython with ulab from ../shared/boards,
  with `-icount shift=0` (tools/qemu_board.py): `vwatch.run(model, Replay(wav, speed=0))`
  with vwatch precompiled for the core. `window` is the median number of instructions from one
  window's report line to the next (ring fill from the replay, features, score, alarm, line);
  `compute` the median of the line's own time field (features, score and alarm only). `fft`:
  the window's C bare `np.fft.fft` calls on N float32 samples of the recording (median of 5),
  the cheapest FFT ulab has, each after a gc.collect() (the floor: the FFT's own work);
  `x FFTs` is window / fft. Counts repeat exactly from run to run.
- the i386 unix build (32-bit words and float32, as on a board): bytes allocated per window
  by vwatch.run (report line included, GC disabled in a 64 MB heap), and the smallest
  `-X heapsize=` (1 KB steps, bisected) in which vwatch.run does 4 windows.

At 64 MHz (about one instruction per cycle on a Cortex-M4F; flash wait states add to that):
`load` = window instructions / (64 M x hop / rate), the share of one core the detector needs
in real time (over 1: it cannot keep up at that hop); `analysed` = the share of the signal a
duty-cycled detector (hop > N, skipping samples) covers: min(1, 64 M x N / rate / window).

    python tools/bench_device.py [--windows 8] [--backends ulab] [--configs seed,IMU]
        [--cores m7] [--no-heap]
"""

import argparse
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
sys.path.insert(0, str(ROOT / "tools"))

import qemu_board  # noqa: E402
from vibrawatch import features, modelfile, simulate  # noqa: E402

CONFIGS = {
    "IMU": dict(rate=952, channels=3, window=256, hop=128, bands=16, stats=7),
    "seed": dict(rate=20000, channels=8, window=1024, hop=1024, bands=12, stats=0),
    # the seed configuration with the zoom block fit adds at 20 kHz (R = 16, N_z = 256), 8 + 4
    # bands a channel: the same d = 96
    "seed+zoom": dict(rate=20000, channels=8, window=1024, hop=1024, bands=8, stats=0,
                      zoom=(16, 256, 4)),
}
BACKENDS = ("pure", "ulab", "q15")
CLOCK = 64e6  # Hz, the board the table speaks of (nRF52840: Cortex-M4F at 64 MHz)
I386 = qemu_board.BOARDS_DIR / "micropython-ulab-m32-f32"

# One window's instructions (thousands) from report line to report line, and the line's field.
RUN = """
import time, vwatch
from array import array
from vwatch.replay import Replay
W = %(windows)d
t = array('i', range(W))
c = array('i', range(W))
k = [0]
def out(line):
    i = k[0]
    if line[:2] == 'w,' and i < W:
        t[i] = time.ticks_us()
        c[i] = int(line[line.rindex(',') + 1:])
        k[0] = i + 1
vwatch.run(%(model)r, Replay(%(wav)r, speed=0, loop=True), backend=%(backend)r, windows=W,
           out=out)
print('WIN', ' '.join(str(time.ticks_diff(t[i], t[i - 1])) for i in range(1, W)))
print('CMP', ' '.join(str(v) for v in c))
"""

# The window's bare FFTs: C calls of np.fft.fft on N float32 samples of the recording.
FFT = """
import gc, time
from array import array
from ulab import numpy as np
from vwatch.wav import Wav
w = Wav(%(wav)r)
n = %(n)d
buf = array('f', range(n))
xs = []
for ch in range(w.channels):
    w.read(ch, 0, n, buf)
    xs.append(np.array(buf, dtype=np.float))
times = []
for r in range(5):
    t = 0
    for x in xs:
        gc.collect()  # the floor: the FFT's own work, not the collections its result causes
        t0 = time.ticks_us()
        np.fft.fft(x)
        t += time.ticks_diff(time.ticks_us(), t0)
    times.append(t)
times.sort()
print('FFT', times[2])
"""

# Bytes per window with the GC off (i386 unix build, 64 MB heap): vwatch.run as it runs.
ALLOC = """
import gc, vwatch
from array import array
from vwatch.replay import Replay
a = array('i', range(4))
k = [0]
def out(line):
    if line[:2] == 'w,':
        i = k[0]
        if i == 1:
            gc.collect()
            gc.disable()
        if 1 <= i < 5:
            a[i - 1] = gc.mem_alloc()
        k[0] = i + 1
vwatch.run(%(model)r, Replay(%(wav)r, speed=0, loop=True), backend=%(backend)r, windows=6,
           out=out)
print('ALLOC', (a[3] - a[0]) // 3)
"""

FITS = """
import sys
sys.path.insert(0, %(mpy)r)
import vwatch
from vwatch.replay import Replay
vwatch.run(%(model)r, Replay(%(wav)r, speed=0, loop=True), backend=%(backend)r, windows=4,
           out=lambda line: None)
print('FITS')
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
        threshold=float(2 * d), clear_threshold=float(d), n_train=1000, **zoom)
    path = folder / (name + ".vwm")
    model.write(path)
    x = simulate.machine(1.0, cfg["rate"], cfg["channels"], seed=1)
    wav = folder / (name + ".wav")
    scipy.io.wavfile.write(wav, cfg["rate"], np.round(x / 4 * 32767).astype(np.int16))
    return path, wav, d


def numbers(out, tag):
    for line in out.splitlines():
        if line.startswith(tag + " "):
            return [int(v) for v in line.split()[1:]]
    raise RuntimeError("no %s line in:\n%s" % (tag, out[-2000:]))


def on_qemu(board, model, wav, backend, windows):
    """(median instructions per window, median compute instructions), in thousands."""
    out = board.run(RUN % dict(model="/rom/m.vwm", wav="/rom/r.wav", backend=backend,
                               windows=windows),
                    files={"m.vwm": model, "r.wav": wav}, icount=True)
    # The first window waits for a full ring; the rest refill one hop.
    return (statistics.median(numbers(out, "WIN")[1:]),
            statistics.median(numbers(out, "CMP")[1:]))


def fft_on_qemu(board, wav, n):
    out = board.run(FFT % dict(wav="/rom/r.wav", n=n), files={"r.wav": wav}, icount=True)
    return numbers(out, "FFT")[0]


def i386(code, heap):
    return subprocess.run([str(I386), "-X", "heapsize=" + heap, "-c", code],
                          capture_output=True, text=True, timeout=1800)


def bytes_per_window(mpy, model, wav, backend):
    code = "import sys\nsys.path.insert(0, %r)\n" % str(mpy) + ALLOC % dict(
        model=str(model), wav=str(wav), backend=backend)
    proc = i386(code, "64M")
    return numbers(proc.stdout + proc.stderr, "ALLOC")[0]


def smallest_heap(mpy, model, wav, backend, lo=8, hi=512):
    """The smallest heap in KB (bisected) in which vwatch.run does its windows on i386."""
    code = FITS % dict(mpy=str(mpy), model=str(model), wav=str(wav), backend=backend)

    def fits(kb):
        proc = i386(code, "%dK" % kb)
        if proc.returncode and "MemoryError" not in proc.stderr + proc.stdout:
            raise RuntimeError("i386 %s at %d KB failed:\n%s" % (backend, kb, proc.stderr))
        return "FITS" in proc.stdout

    if not fits(hi):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return hi


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=8, help="windows per qemu run")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="e.g. ulab")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="e.g. seed,seed+zoom")
    parser.add_argument("--cores", default="m3,m7", help="qemu cores: m3, m7")
    parser.add_argument("--no-heap", action="store_true", help="skip the smallest-heap search")
    args = parser.parse_args()
    cores = args.cores.split(",")
    for core in cores:
        reason = qemu_board.missing(core)
        if reason:
            sys.exit("bench_device: " + reason)
    if not I386.is_file():
        sys.exit("bench_device: no %s (../shared/boards)" % I386)
    boards = {core: qemu_board.QemuBoard(core, timeout=3600) for core in cores}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mpy = qemu_board.precompile(tmp / "mpy-x86", "x86")
        for name in args.configs.split(","):
            cfg = CONFIGS[name]
            model, wav, d = write_inputs(tmp, name, cfg)
            period = CLOCK * cfg["hop"] / cfg["rate"]  # instructions per hop at 64 MHz
            ffts = {core: fft_on_qemu(b, wav, cfg["window"]) for core, b in boards.items()}
            for backend in args.backends.split(","):
                per = bytes_per_window(mpy, model, wav, backend)
                heap = None if args.no_heap else smallest_heap(mpy, model, wav, backend)
                for core, b in boards.items():
                    win, cmp_ = on_qemu(b, model, wav, backend, args.windows)
                    rows.append((name, d, b.core.name, backend, win / 1e3, cmp_ / 1e3,
                                 ffts[core] / 1e3, win / ffts[core], per, heap,
                                 win * 1e3 / period,
                                 min(1.0, CLOCK * cfg["window"] / cfg["rate"] / (win * 1e3))))
                    print("  %s %s %s: %.2f M instructions" % (rows[-1][:1] + rows[-1][2:5]),
                          file=sys.stderr)
    for b in boards.values():
        b.close()
    print("| config | d | core | backend | window (M instr.) | compute | bare FFTs | x FFTs "
          "| bytes/window (i386) | smallest heap (i386) | load at 64 MHz | analysed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        heap = "%d KB" % r[9] if r[9] else "-" if args.no_heap else "> 512 KB"
        print("| %s | %d | %s | %s | %.2f | %.2f | %.2f | %.1fx | %s | %s | %.2f | %.0f %% |"
              % (r[:8] + ("{:,}".format(r[8]), heap, r[10], 100 * r[11])))


if __name__ == "__main__":
    main()
