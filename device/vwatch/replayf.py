"""vwatch.replay's IEEE float32 recordings: the file's peak and the quantisation to int16.

Its own module so that replaying an int16 recording (the common case) does not hold this
code; see vwatch.replay for what it does.
"""

import micropython


@micropython.native
def quantise(src, dst, count, c, inv):
    # dst[i] = round(src[i] * inv) for whole frames; stop before the first frame holding a NaN
    # or infinity (NaN != NaN; inf * 0 is NaN) and return how many frames were converted.
    i = 0
    for f in range(count):
        for j in range(c):
            v = src[i + j]
            if v != v or v * 0.0 != 0.0:
                return f
        for j in range(c):
            v = src[i] * inv
            dst[i] = int(v + 0.5) if v >= 0.0 else -int(0.5 - v)
            i += 1
    return count


def peak(r):
    # The largest finite |sample| of the Replay r's float32 file: one pass at start.
    f = r._f
    f.seek(r._data)
    left = r.frames * r.channels
    buf = r._fbuf
    top = 0.0
    while left > 0:
        k = min(left, len(buf))
        f.readinto(r._fmv[:k])
        for i in range(k):
            v = buf[i]
            if v == v and v * 0.0 == 0.0:
                if v < 0:
                    v = -v
                if v > top:
                    top = v
        left -= k
    return top


def read_float(r, buf, k):
    # Up to k frames of the Replay r's float32 file as int16 into buf; see vwatch.replay.
    c = r.channels
    per = len(r._fbuf) // c
    if k > per:
        k = per
    r._f.readinto(r._fmv[: k * c])
    got = quantise(r._fbuf, buf, k, c, r._inv)
    if got == 0:  # the first frame is invalid: deliver it alone, as zeros
        for j in range(c):
            buf[j] = 0
        r.invalid += 1
        return 1
    return got
