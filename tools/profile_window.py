"""Where a window's instructions go: the detector's steps timed inside vwatch.run on a qemu core.

A benchmark, not a test: it prints a table and asserts nothing. It runs
`vwatch.run(model, Replay(wav, speed=0))` on the inputs of tools/bench_device.py (same
configurations, random valid fitted models, simulated int16 recordings) with the steps of the
chosen backend wrapped by a timer (`time.ticks_us()`, which counts thousands of instructions
under `-icount shift=0`), and prints each step's instructions per window, averaged over the
windows after the first two. Steps nest (the backend's `compute` holds its FFTs); a timer
costs about a thousand instructions a call, so the small steps read a little high. The
window's own total (the report line's time field) is in the last row.

    python tools/profile_window.py                     # ulab, seed configuration, Cortex-M7
    python tools/profile_window.py --backend q15 --core m3 --config seed
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import bench_device  # noqa: E402
import qemu_board  # noqa: E402

# (module, object or None for a module function, attribute) per backend; the ring, the alarm
# and the zoom block's decimation are shared.
STEPS = {
    "ulab": [("ulab_kernels", None, "compute"), ("ulab_kernels", None, "_prep"),
             ("ulab_pairs", None, "_pair"), ("ulab_kernels", None, "FFT"),
             ("ulab_kernels", None, "score"),
             ("ulab_zoom", "Zoom", "compute")],
    "q15": [("backend_q15", "Features", "compute"), ("backend_q15", "Features", "_spectrum"),
            ("q15_spectrum", None, "iconv"), ("q15_spectrum", None, "center"),
            ("q15_spectrum", None, "window"), ("q15_spectrum", None, "bitrev"),
            ("q15_spectrum", None, "stage"), ("q15_spectrum", None, "split"),
            ("q15_spectrum", None, "bands"), ("q15_score", None, "logs"),
            ("backend_q15", "Features", "mahal"), ("q15_zoom", "Zoom", "compute")],
    "pure": [("backend_pure", "Features", "compute"), ("backend_pure", "Features", "score")],
}
SHARED = [("ring", "Ring", "fill"), ("ring", "Ring", "peak"), ("ring", "Ring", "read_int16"),
          ("ring", "Ring", "advance"), ("alarm", "Alarm", "step"), ("zoom", "Low", "window")]

CODE = """
import time, vwatch
from vwatch.replay import Replay
acc = {}
def timed(name, f):
    def w(*a):
        t0 = time.ticks_us()
        r = f(*a)
        acc[name] = acc.get(name, 0) + time.ticks_diff(time.ticks_us(), t0)
        return r
    return w
for mod, obj, attr in %(steps)r:
    try:
        m = __import__('vwatch.' + mod, None, None, [mod])
    except ImportError:
        continue
    holder = getattr(m, obj) if obj else m
    if hasattr(holder, attr):
        setattr(holder, attr, timed(mod + '.' + (obj + '.' if obj else '') + attr,
                                    getattr(holder, attr)))
k = [0]
def out(line):
    if line[:2] == 'w,':
        k[0] += 1
        if k[0] == 2:
            for key in acc:
                acc[key] = 0
        elif k[0] > 2:
            print('US', line[line.rindex(',') + 1:])
vwatch.run('/rom/m.vwm', Replay('/rom/r.wav', speed=0, loop=True), backend=%(backend)r,
           windows=%(windows)d, out=out)
for key in acc:
    print('STEP', key, acc[key] // %(counted)d)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=sorted(STEPS), default="ulab")
    parser.add_argument("--config", choices=sorted(bench_device.CONFIGS), default="seed")
    parser.add_argument("--core", choices=("m3", "m7"), default="m7")
    parser.add_argument("--windows", type=int, default=12, help="windows per run (>= 3)")
    args = parser.parse_args()
    if args.windows < 3:
        parser.error("--windows must be at least 3 (the first two are not counted)")
    reason = qemu_board.missing(args.core)
    if reason:
        sys.exit("profile_window: " + reason)
    board = qemu_board.QemuBoard(args.core, timeout=3600)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            model, wav, d = bench_device.write_inputs(Path(tmp), args.config,
                                                      bench_device.CONFIGS[args.config])
            code = CODE % dict(steps=STEPS[args.backend] + SHARED, backend=args.backend,
                               windows=args.windows, counted=args.windows - 2)
            out = board.run(code, files={"m.vwm": model, "r.wav": wav}, icount=True)
    finally:
        board.close()
    steps = [ln.split()[1:] for ln in out.splitlines() if ln.startswith("STEP ")]
    window = [int(ln.split()[1]) for ln in out.splitlines() if ln.startswith("US ")]
    print("%s, %s backend, Cortex-%s, d = %d: instructions per window (M)"
          % (args.config, args.backend, args.core.upper(), d))
    print("| step | M instr. |")
    print("|---|---|")
    for name, k in sorted(steps, key=lambda s: -int(s[1])):
        print("| %s | %.2f |" % (name, int(k) / 1e3))
    print("| window (report line's time field, median) | %.2f |"
          % (statistics.median(window) / 1e3))


if __name__ == "__main__":
    main()
