"""One window of the detector in instructions, bytes and heap: the ulab fast path's yardstick.

A benchmark, not a test: it prints a table and asserts nothing. For the two reference
configurations (IMU: 3 x 952 Hz, N=256, hop 128, 16 bands + 3 stats, d=57; seed: 8 x 20 kHz,
N=1024, hop N, 12 bands, d=96) and each backend, with a random valid model and a simulated
int16 recording, the runtime's own objects (vwatch.runtime.allocate, as vwatch.run() makes them)
process the recording window by window, ring fill to alarm:

- Mi/window: millions of instructions per window (median of the windows after 2 warm-up ones,
  the GC running when it must, as in vwatch.run())
  on qemu's Cortex-M7 (FPU) and Cortex-M3 (soft float), counted with ``-icount shift=0``
  (``time.ticks_us()`` differences count thousands of instructions, exactly and repeatably);
  vwatch compiled with mpy-cross for the core and loaded from a ROMFS image;
- x FFTs: that over the bare ``np.fft.fft`` calls of the window (one per channel, on the
  window's own samples, on the same core);
- bytes/window: ``gc.mem_alloc()`` growth over one window with the GC off, on the float32
  x86-64 unix build;
- min heap: the smallest ``-X heapsize`` (1 KB steps) in which ``vwatch.run()`` reports 3
  windows on the i386 unix build (32-bit words, vwatch compiled with -march=x86), and the
  smallest in which a second ``vwatch.run()`` in the same session then also runs
  (``--heap-build f32``: on the x86-64 float32 build instead, vwatch compiled with -march=x64).

    python tools/bench_window.py [--boards ../shared/boards] [--backends ulab,q15,pure]
        [--configs IMU,seed] [--cores M7,M3] [--no-qemu] [--no-heap] [--heap-build m32|f32]

BENCH_PARTS=1 also prints each board window's parts (ring fill, features, score) and the
backend's repr (FFT and score form) with the heap left after start-up.
"""

import argparse
import os
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
    "IMU": dict(rate=952, channels=3, window=256, hop=128, bands=16, stats=7, windows=12),
    "seed": dict(rate=20000, channels=8, window=1024, hop=1024, bands=12, stats=0, windows=9),
}

WINDOWS = """
import gc, time, sys
sys.path.insert(0, %(lib)r)
from ulab import numpy as np
from vwatch import runtime
from vwatch.replay import Replay
m, sensor, fe, ring, alarm = runtime.allocate(%(model)r, Replay(%(wav)r, speed=0), %(backend)r)
gc.collect()
print('INFO', fe, 'free', gc.mem_free(), 'used', gc.mem_alloc())
parts = [0, 0, 0]
def window():
    t0 = time.ticks_us()
    while not ring.ready():
        ring.fill(sensor)
    t1 = time.ticks_us()
    fe.compute(ring, 0)
    t2 = time.ticks_us()
    alarm.step(fe.score())
    ring.advance()
    t3 = time.ticks_us()
    parts[0] = time.ticks_diff(t1, t0)
    parts[1] = time.ticks_diff(t2, t1)
    parts[2] = time.ticks_diff(t3, t2)
ts = []
gc.collect()
for i in range(%(windows)d):  # the GC runs when it must, as in run(): its cost is counted
    t0 = time.ticks_us()
    window()
    ts.append(time.ticks_diff(time.ticks_us(), t0))
    print('PARTS fill %%d compute %%d score %%d' %% tuple(parts))
gc.collect()
gc.disable()
a = gc.mem_alloc()
try:
    window()
    per = gc.mem_alloc() - a
except MemoryError:  # more than this heap holds without a collection (measured on unix)
    per = -1
gc.enable()
gc.collect()
x = np.zeros(m.window)
ring.read(0, 0, m.window, x)  # the samples of a real window
fts = []
for i in range(5):
    gc.collect()
    t0 = time.ticks_us()
    for c in range(m.channels):
        np.fft.fft(x)
    fts.append(time.ticks_diff(time.ticks_us(), t0))
print('RESULT', fe.name, ' '.join(str(t) for t in ts[2:]), '|', ' '.join(str(t) for t in fts),
      '|', per)
"""

RUN_TWICE = """
import sys
sys.path.insert(0, %(lib)r)
import vwatch
from vwatch.replay import Replay
def out(line):
    if line[:2] == 'w,':
        print('W')
for i in range(%(runs)d):
    vwatch.run(%(model)r, Replay(%(wav)r, speed=0), backend=%(backend)r, windows=3, out=out)
    print('RUN', i)
"""


def write_inputs(folder, name, cfg):
    """A random but valid model and an int16 recording of ``windows`` + 1 windows."""
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
        threshold=float(2 * d), clear_threshold=float(d), n_train=1000)
    model.write(folder / (name + ".vwm"))
    frames = cfg["window"] + (cfg["windows"] + 1) * cfg["hop"]
    x = simulate.machine(frames / cfg["rate"] + 0.01, cfg["rate"], cfg["channels"], seed=1)
    scipy.io.wavfile.write(folder / (name + ".wav"), cfg["rate"],
                           np.round(x[:frames] / 4 * 32767).astype(np.int16))
    return d


def parse_result(text):
    for line in text.splitlines():
        if "RESULT " in line:  # after the raw REPL's ">OK" on the board
            _, name, rest = line[line.index("RESULT "):].split(None, 2)
            win, ffts, per = rest.split("|")
            return ([int(v) for v in win.split()], [int(v) for v in ffts.split()], int(per))
    raise RuntimeError("no result:\n" + text[-3000:])


def on_core(core, tmp, cfgs, backends):
    """{(config, backend): (Mi/window, Mi of bare FFTs)} on one qemu core (tools/qemu_board.py:
    vwatch precompiled for it, the recordings word-aligned in its ROMFS image)."""
    board = qemu_board.QemuBoard(core.lower(), timeout=900)
    out = {}
    try:
        for name in cfgs:
            files = {name + ext: tmp / (name + ext) for ext in (".vwm", ".wav")}
            for backend in backends:
                code = WINDOWS % dict(lib="/rom/lib", model="/rom/%s.vwm" % name,
                                      wav="/rom/%s.wav" % name, backend=backend,
                                      windows=CONFIGS[name]["windows"])
                text = board.run(code, files=files, icount=True)
                if os.environ.get("BENCH_PARTS"):
                    print("\n".join(ln for ln in text.splitlines()
                                    if "PARTS" in ln or "INFO" in ln), file=sys.stderr)
                win, ffts, _ = parse_result(text)
                out[name, backend] = (statistics.median(win) / 1000, min(ffts) / 1000)
                print("  %s %s %s: %.2f Mi, FFTs %.2f Mi"
                      % ((core, name, backend) + out[name, backend]), file=sys.stderr)
    finally:
        board.close()
    return out


def unix(exe, heap, code, timeout=600):
    return subprocess.run([exe, "-X", "heapsize=" + heap, "-c", code], capture_output=True,
                          text=True, timeout=timeout)


def bytes_per_window(exe, mpy, tmp, name, backend):
    code = WINDOWS % dict(lib=str(mpy), model=str(tmp / (name + ".vwm")),
                          wav=str(tmp / (name + ".wav")), backend=backend, windows=3)
    proc = unix(exe, "4M", code)
    return parse_result(proc.stdout + proc.stderr)[2]


def runs(exe, mpy, tmp, name, backend, heap_kb, times):
    code = RUN_TWICE % dict(lib=str(mpy), model=str(tmp / (name + ".vwm")),
                            wav=str(tmp / (name + ".wav")), backend=backend, runs=times)
    proc = unix(exe, "%dK" % heap_kb, code)
    return proc.stdout.count("RUN ") == times and proc.stdout.count("W") == 3 * times


def smallest_heap(exe, mpy, tmp, name, backend):
    """The smallest heap (KB) in which run() reports 3 windows, and whether a second run()
    works there too (else the smallest heap for two)."""
    lo, hi = 8, 400
    if not runs(exe, mpy, tmp, name, backend, hi, 1):
        return None, None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if runs(exe, mpy, tmp, name, backend, mid, 1):
            hi = mid
        else:
            lo = mid
    once = hi
    twice = once
    while not runs(exe, mpy, tmp, name, backend, twice, 2) and twice < once + 64:
        twice += 1
    return once, twice


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boards", default=str(ROOT.parent / "shared" / "boards"),
                        help="where the unix builds are (the qemu cores: tools/qemu_board.py)")
    parser.add_argument("--backends", default="ulab,q15,pure")
    parser.add_argument("--configs", default="IMU,seed")
    parser.add_argument("--cores", default="M7,M3")
    parser.add_argument("--no-qemu", action="store_true")
    parser.add_argument("--no-heap", action="store_true")
    parser.add_argument("--heap-build", choices=("m32", "f32"), default="m32",
                        help="the unix build the min heap is measured on: i386 (32-bit words, "
                        "the default) or x86-64")
    args = parser.parse_args()
    boards = Path(args.boards).resolve()
    backends = args.backends.split(",")
    cfgs = args.configs.split(",")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ds = {name: write_inputs(tmp, name, CONFIGS[name]) for name in cfgs}
        cores = {}
        if not args.no_qemu:
            for core in args.cores.split(","):
                reason = qemu_board.missing(core.lower())
                if reason:
                    sys.exit("bench_window: %s (or pass --no-qemu)" % reason)
                cores[core] = on_core(core, tmp, cfgs, backends)
        f32 = boards / "micropython-ulab-f32"
        m32 = boards / "micropython-ulab-m32-f32"
        qemu_board.precompile(tmp / "x64", "x64")  # the whole package as deployed
        qemu_board.precompile(tmp / "x86", "x86")
        for name in cfgs:
            for backend in backends:
                per = bytes_per_window(str(f32), tmp / "x64", tmp, name, backend)
                heap = (None, None)
                if not args.no_heap:
                    exe, folder = (m32, "x86") if args.heap_build == "m32" else (f32, "x64")
                    heap = smallest_heap(str(exe), tmp / folder, tmp, name, backend)
                rows[name, backend] = (per,) + heap
                print("  %s %s: %d B/window, heap %s" % (name, backend, per, heap),
                      file=sys.stderr)
    print("| config | d | backend | core | Mi/window | bare np.fft.fft Mi | x FFTs | "
          "bytes/window (f32 x64) | min heap %s (once / twice) |"
          % ("i386" if args.heap_build == "m32" else "x86-64"))
    print("|---|---|---|---|---|---|---|---|---|")
    for name in cfgs:
        for backend in backends:
            per, once, twice = rows[name, backend]
            for core in cores or [None]:
                if core is None:
                    cols = "- | - | - | -"
                else:
                    mi, fft = cores[core][name, backend]
                    cols = "%s | %.2f | %.2f | %.2f" % (core, mi, fft, mi / fft)
                print("| %s | %d | %s | %s | %d | %s / %s |" % (name, ds[name], backend, cols,
                                                                per, once, twice))


if __name__ == "__main__":
    main()
