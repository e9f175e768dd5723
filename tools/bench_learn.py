"""What learning on the board costs on the qemu cores, in instructions (qemu -icount shift=0).

A benchmark, not a test: it prints a table (README "Learning on the board" holds a copy). On the
Cortex-M3 (no FPU, software float) and the Cortex-M7 (FPU) firmware of ../shared/boards, with
vwatch precompiled for each core (tools/qemu_board.py): one window's accumulation (compensated
and shifted only), the OAS shrinkage and the precision's Cholesky factor, for d features.

    python tools/bench_learn.py [--d 96]
"""

import argparse
import sys

import qemu_board

CODE = """
import time
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
"""


def run(core, d):
    """{ADD1, ADD0, OAS, FACTOR: thousands of instructions} on one qemu core."""
    board = qemu_board.QemuBoard(core)
    try:
        out = board.run(CODE % dict(d=d), icount=True)
    finally:
        board.close()
    got = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("ADD", "OAS", "FACTOR"):
            key = parts[0] + (parts[1] if parts[0] == "ADD" else "")
            got[key] = int(parts[-1])
    return got


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=96, help="features")
    args = parser.parse_args()
    for core in qemu_board.CORES:
        reason = qemu_board.missing(core)
        if reason:
            sys.exit("bench_learn: " + reason)
    d = args.d
    print("### Learning on the qemu cores, d = %d features (thousands of instructions)" % d)
    print("| core | one window, compensated | one window, shift only | OAS | Cholesky factor "
          "of the precision |")
    print("|---|---|---|---|---|")
    for core in qemu_board.CORES:
        got = run(core, d)
        print("| %s | %s | %s | %s | %s |" % (qemu_board.CORES[core].label, got.get("ADD1", "?"),
                                              got.get("ADD0", "?"), got.get("OAS", "?"),
                                              got.get("FACTOR", "?")))
    print("(-icount shift=0: a microsecond of guest time is a thousand instructions; the "
          "factor is about d^3/3 = %d multiply-adds)" % (d ** 3 // 3))


if __name__ == "__main__":
    main()
