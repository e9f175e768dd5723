"""Long runs of the detector across heap sizes: does a run that starts also keep running?

A benchmark, not a test: it prints a table and asserts nothing. For one configuration of
tools/bench_device.py (random valid fitted model, simulated int16 recording, looped), it runs
`vwatch.run(model, Replay(wav, speed=0, loop=True), backend=..., windows=W)` on a unix build
from ../shared/boards at every heap size of a range, and reports for each whether it started,
how many windows it did and the start line's score form. A heap in which the run starts but a
later window fails (a MemoryError for an FFT result in a fragmented heap) is the failure the
backends' start-up margins must prevent; the smallest heap in which it starts is what
tools/bench_window.py bisects.

    python tools/heap_sweep.py --config seed+zoom --build m32 --heaps 108:150
    python tools/heap_sweep.py --config IMU --build f32 --heaps 50:100:2 --windows 3000

Stop 25 used it to find runs that died after 0 to 641 windows (seed+zoom, i386 133 KB and
x86-64 138-150 KB): see the README's "Instructions per window on Cortex-M".
"""

import argparse
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import bench_device  # noqa: E402
import qemu_board  # noqa: E402

BUILDS = {  # interpreter in ../shared/boards, mpy-cross -march
    "m32": ("micropython-ulab-m32-f32", "x86"),
    "f32": ("micropython-ulab-f32", "x64"),
}

RUN = """
import sys
sys.path.insert(0, %(mpy)r)
import vwatch
from vwatch.replay import Replay
k = [0]
def out(line):
    if line[:2] == 'w,':
        k[0] += 1
    elif line.startswith('vw1 start '):
        print('FORM', line[line.index('score=') + 6:])
try:
    vwatch.run(%(model)r, Replay(%(wav)r, speed=0, loop=True), backend=%(backend)r,
               windows=%(windows)d, out=out)
    print('DONE', k[0])
except MemoryError as e:
    print('FAILED', k[0], e)
"""


def run_at(exe, code, folder, kb):
    proc = subprocess.run([exe, "-X", "heapsize=%dK" % kb, "-c", code], capture_output=True,
                          text=True, timeout=3600, cwd=folder)
    form, done, error = "-", 0, ""
    for line in proc.stdout.splitlines():
        if line.startswith("FORM "):
            form = line.split()[1]
        elif line.startswith("DONE "):
            done = int(line.split()[1])
        elif line.startswith("FAILED "):
            done = int(line.split()[1])
            error = line.split(" ", 2)[2]
    if not error and not proc.stdout.count("DONE "):
        error = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return kb, form, done, error


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=sorted(bench_device.CONFIGS), default="seed+zoom")
    parser.add_argument("--build", choices=sorted(BUILDS), default="m32",
                        help="m32: i386, 32-bit words as on a board; f32: x86-64")
    parser.add_argument("--backend", default="ulab", help="ulab, q15 or pure")
    parser.add_argument("--heaps", default="100:150",
                        help="heap sizes in KB as FROM:TO[:STEP] (TO excluded)")
    parser.add_argument("--windows", type=int, default=2000, help="windows per run")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    try:
        parts = [int(v) for v in args.heaps.split(":")]
        heaps = range(parts[0], parts[1], parts[2] if len(parts) > 2 else 1)
    except (ValueError, IndexError):
        parser.error("--heaps wants FROM:TO[:STEP] in KB, e.g. 100:150:2")
    name, march = BUILDS[args.build]
    exe = qemu_board.BOARDS_DIR / name
    if not exe.is_file():
        sys.exit("heap_sweep: no %s (the unix builds with ulab from ../shared/boards)" % exe)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mpy = qemu_board.precompile(folder / "mpy", march)
        model, wav, d = bench_device.write_inputs(folder, "case",
                                                  bench_device.CONFIGS[args.config])
        # short relative names, as a board has: the heap's layout moves with their lengths
        code = RUN % dict(mpy=os.path.relpath(mpy, folder), model=model.name, wav=wav.name,
                          backend=args.backend, windows=args.windows)
        print("%s, %s backend, %s build, %d windows a run" % (args.config, args.backend,
                                                            args.build, args.windows))
        print("| heap | score | windows | error |")
        print("|---|---|---|---|")
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for kb, form, done, error in pool.map(
                    lambda kb: run_at(str(exe), code, folder, kb), heaps):
                print("| %d KB | %s | %d | %s |" % (kb, form, done, error), flush=True)


if __name__ == "__main__":
    main()
