"""`vibrawatch record`: samples from a board's sensor into a WAV file, nothing lost.

The board sends bursts with sequence numbers and CRC-32s (docs/protocol.md, "Recording");
a gap, a repeat or a bad checksum stops the recording with an error instead of writing a
damaged file. The WAV holds float32 samples in g (the board's counts times its sensor's scale,
the very values the board's features see), at the rate the board measured, rounded to whole
hertz as WAV requires (the exact rate is in the RecordInfo and printed).

    info = record(board, seconds=10, path="run1.wav")
"""

import base64
import binascii
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io.wavfile

from . import protocol
from .board import BoardError
from .outputs import atomic_path, check_file

IDLE_TIMEOUT_S = 20.0


class RecordError(BoardError):
    pass


@dataclass
class RecordInfo:
    path: Path
    frames: int
    channels: int
    rate: float
    scale: float
    dropped: int


def record(board, seconds, path, progress=None, sensor_expr=None):
    """Record ``seconds`` of the board's sensor into ``path`` (int16 WAV); RecordInfo.

    ``sensor_expr`` is Python for the board that makes the sensor (default: vwatch's)."""
    check_file(path, "-o")  # before the board streams: a bad path must not cost the samples
    state = {"start": None, "end": None}
    bursts = []

    def on_line(line):
        if line.startswith("r,"):
            if state["start"] is None:
                raise RecordError("a burst came before the recording's start line")
            bursts.append(_decode_burst(line, len(bursts), state["start"]["ch"]))
            if progress:
                progress(bursts[-1].shape[0])
        elif line.startswith("vw1 rec start"):
            state["start"] = protocol.parse_fields(line.split()[3:])
        elif line.startswith("vw1 rec end"):
            state["end"] = protocol.parse_fields(line.split()[3:])

    args = repr(float(seconds)) + (", sensor=" + sensor_expr if sensor_expr else "")
    try:
        board.exec_stream("import vwatch\nvwatch.record(%s)" % args, on_line,
                          idle_timeout=IDLE_TIMEOUT_S)
    except RecordError:
        board.interrupt()  # the board is still streaming: stop it before giving up
        raise
    start, end = state["start"], state["end"]
    if start is None or end is None:
        raise RecordError("the board's recording has no %s line: is vwatch up to date on it? "
                          "(vibrawatch deploy)" % ("start" if start is None else "end"))
    data = np.concatenate(bursts) if bursts else np.zeros((0, start["ch"]), np.int16)
    if end["frames"] != data.shape[0]:
        raise RecordError("the board announced %s frames but %d arrived"
                          % (end["frames"], data.shape[0]))
    rate = float(end.get("rate", start["rate"]))
    path = Path(path)
    in_g = (data.astype(np.float64) * float(start["scale"])).astype(np.float32)
    with atomic_path(path) as tmp:  # an old recording is replaced only by a complete one
        scipy.io.wavfile.write(tmp, int(round(rate)), in_g)
    return RecordInfo(path, data.shape[0], data.shape[1], rate, float(start["scale"]),
                      int(end.get("dropped", 0)))


def _decode_burst(line, expected_seq, channels):
    try:
        _, seq, frames, crc, payload = line.split(",", 4)
        seq, frames, crc = int(seq), int(frames), int(crc, 16)
        raw = base64.b64decode(payload, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise RecordError("burst %d is malformed (%s): the link corrupted it; record again, "
                          "with a lower baud rate or a shorter cable" % (expected_seq, exc)) from exc
    if seq != expected_seq:
        raise RecordError("burst %d arrived where %d was expected: bursts were lost on the "
                          "link; record again" % (seq, expected_seq))
    if zlib.crc32(raw) != crc or len(raw) != 2 * channels * frames:
        raise RecordError("burst %d failed its CRC check: the link corrupted it; record again"
                          % seq)
    return np.frombuffer(raw, "<i2").reshape(frames, channels)
