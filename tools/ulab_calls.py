"""What single ulab calls cost: instructions on qemu's Cortex-M7 and bytes on the i386 build.

A benchmark, not a test: it prints a table (README "Instructions per window on Cortex-M",
"What is left of the 1.5x") and asserts nothing. The ulab window's cost is the sum of calls
like these, so their price says how far a rework in Python can go and what would take a
change in the firmware.

Each call runs 64 times in a loop (4 or 8 where it allocates kilobytes) with the GC off
(collected before), on float32 data of length N with power in every bin (a chirp and a tone
between bins: an FFT, and the spectrogram's square roots, are cheaper on zeros and on tones
at bin frequencies):

- instructions: qemu's Cortex-M7 with `-icount shift=0` (tools/qemu_board.py), where
  time.ticks_us() counts thousands of instructions; the loop's own cost (an empty call, as
  many times) is taken off. A loop's count is exact to a tick, whose phase at its start
  differs between runs: to about 16 instructions a call at 64 calls a loop, 250 at 4.
- bytes: the i386 unix build with ulab (32-bit words and float32, as on a board),
  gc.mem_alloc() before and after, per call.

    python tools/ulab_calls.py            # N = 1024 and 256, about 5 s; needs ../shared/boards
    python tools/ulab_calls.py --n 1024
"""

import argparse
import subprocess
import sys

import qemu_board

I386 = qemu_board.BOARDS_DIR / "micropython-ulab-m32-f32"

# (what the row says, the call[, calls per loop: 64 unless given; few where each call leaves
# kilobytes, since the GC is off]); names: x, y (N floats), z0 (1 element), b (a 16-float view
# of y: no call may change y), c (16 floats), z (12 floats), r16 (8 interleaved int16 channels of N frames), buf (the bytes of y), sp and o
# (the spectrogram's scratchpad and output).
CALLS = [
    ("`x *= y` (in place, an array operand)", "x *= y"),
    ("`x *= z0` (a 1-element array operand)", "x *= z0"),
    ("`x *= 0.5` (a float operand)", "x *= 0.5"),
    ("`r16[1::8]` (a strided view of interleaved int16)", "r16[1 : 8 * N : 8]"),
    ("`x += r16[1::8]` (the view and the add)", "x += r16[1 : 8 * N : 8]"),
    ("`np.frombuffer(buf, dtype=np.float)`", "np.frombuffer(buf, dtype=np.float)"),
    ("`np.mean(x)`", "np.mean(x)"),
    ("`np.sum(x)`", "np.sum(x)"),
    ("`np.max(x)`", "np.max(x)"),
    ("`np.dot(x, x)`", "np.dot(x, x)"),
    ("`np.sum(b)` (a 16-bin band)", "np.sum(b)"),
    ("`np.log(b, out=c)` (16 floats)", "np.log(b, out=c)"),
    ("`x[:] = r16[1::8]` (slice assignment: through a converted copy)",
     "x[:] = r16[1 : 8 * N : 8]", 8),
    ("`np.max(r16)` (8 N int16)", "np.max(r16)"),
    ("`np.dot(z, z)` (12 floats: a score block's)", "np.dot(z, z)"),
    ("`z *= z; np.sum(z)` (12 floats)", "z *= z; np.sum(z)"),
    ("a pair's conversion, mean, mean removal and Hann: 1-D views, 10 calls", "pair_1d()", 8),
    ("the same through 2-D views of the ring and the pair buffer, 5 calls", "pair_2d()", 8),
    ("`np.fft.fft(x)`", "np.fft.fft(x)", 4),
    ("`utils.spectrogram(x, scratchpad=, out=)`", "utils.spectrogram(x, scratchpad=sp, out=o)", 8),
]

SETUP = """
import gc, math, time
from ulab import numpy as np
from ulab import utils
N = %(n)d
y = np.linspace(0, 1, N)  # a chirp and a tone between bins: every bin has power
y *= y
y *= 0.37 * N * N
np.sin(y, out=y)
w = np.linspace(0, 2 * math.pi * 37.3, N)
np.sin(w, out=w)
y += w
w = None
x = np.zeros(N)
x += y
z0 = np.zeros(1)
b = y[100:116]
c = np.zeros(16)
z = np.linspace(0.5, 1, 12)
r16 = np.zeros(8 * N, dtype=np.int16)
buf = np.zeros(N)
sp = np.zeros(2 * N)
o = np.zeros(N)

# channels 2 and 3 of the ring into the pair buffer (z = x1 + i x2 interleaved), as
# ulab_pairs does it, and the same with 2-D views
zbuf = np.zeros(2 * N)
zr = zbuf[0::2]
zi = zbuf[1::2]
Z = zbuf.reshape((N, 2))
hann = np.linspace(0, 2 * math.pi, N, endpoint=False)
np.cos(hann, out=hann)
hann *= -0.5
hann += 0.5
h2 = hann.reshape((N, 1))
m1 = np.zeros(1)
m1v = memoryview(m1)

def pair_1d():
    for v, k in ((zr, 2), (zi, 3)):
        v *= z0
        v += r16[k : 8 * N : 8]
        m1v[0] = np.mean(v)
        v -= m1
        v *= hann

def pair_2d():
    global Z
    Z *= z0
    Z += r16.reshape((N, 8))[:, 2:4]
    Z -= np.mean(Z, axis=0)
    Z *= h2

def measure(f, r):
    global x
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    t = time.ticks_us()
    for i in range(r):
        f()
    t = time.ticks_diff(time.ticks_us(), t)
    a = gc.mem_alloc() - a
    gc.enable()
    x *= z0  # the next call starts from the same data
    x += y
    return t, a

def nothing():
    pass

"""

ROW = """
def f():
    global x, b, z
    %(call)s
t, a = measure(f, %(reps)d)
t0, a0 = measure(nothing, %(reps)d)
print('ROW', %(i)d, t - t0, a - a0)
"""


def reps(row):
    return row[2] if len(row) > 2 else 64


def program(n):
    code = SETUP % dict(n=n)
    for i, row in enumerate(CALLS):
        code += ROW % dict(call=row[1], i=i, reps=reps(row))
    return code


def rows(out):
    got = {}
    for line in out.splitlines():
        if line.startswith("ROW "):
            _, i, t, a = line.split()
            got[int(i)] = (int(t), int(a))
    if len(got) != len(CALLS):
        raise RuntimeError("missing rows in:\n" + out[-2000:])
    return got


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", default="1024,256", help="lengths, e.g. 1024,256")
    args = parser.parse_args()
    reason = qemu_board.missing("m7")
    if reason:
        sys.exit("ulab_calls: " + reason)
    if not I386.is_file():
        sys.exit("ulab_calls: no %s (../shared/boards)" % I386)
    ns = [int(v) for v in args.n.split(",")]
    board = qemu_board.QemuBoard("m7")
    cost, size = {}, {}
    try:
        for n in ns:
            code = program(n)
            cost[n] = rows(board.run(code, icount=True))
            proc = subprocess.run([str(I386), "-X", "heapsize=1M", "-c", code],
                                  capture_output=True, text=True, timeout=600)
            size[n] = rows(proc.stdout + proc.stderr)
    finally:
        board.close()
    head = " | ".join("M7 instr. (N = %d) | bytes i386 (N = %d)" % (n, n) for n in ns)
    print("| call | %s |" % head)
    print("|---|" + "---|---|" * len(ns))
    for i, row in enumerate(CALLS):
        cells = []
        for n in ns:
            cells.append("{:,}".format(round(cost[n][i][0] * 1000 / reps(row))))
            cells.append("{:,}".format(round(size[n][i][1] / reps(row))))
        print("| %s | %s |" % (row[0], " | ".join(cells)))

if __name__ == "__main__":
    main()
