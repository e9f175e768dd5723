"""Loading recordings: WAV, CSV, NPY/NPZ, and the public data sets' layouts (datasets.py).

Every loader returns a Recording whose ``samples`` is a (frames, channels) array, memory-mapped
where the format allows it (WAV, NPY), so long recordings are streamed, not loaded.

    rec = load("run1.wav")                      # rate from the header
    rec = load("run1.npy", rate=20000)          # NPY/NPZ/CSV without a time column need --rate
"""

import csv
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import datasets
from .errors import VibrawatchError

RATE_TOLERANCE = 0.005  # relative: a 952 Hz IMU is not a 1 kHz one, but 20480 is 20480.1
TIME_COLUMNS = ("t", "time", "time_s", "timestamp", "seconds")


class RecordingError(VibrawatchError):
    pass


@dataclass
class Recording:
    name: str
    rate: float
    samples: np.ndarray  # (frames, channels); int16 PCM is scaled lazily by `scale`
    scale: float = 1.0  # multiply samples by this to get the recording's units
    info: dict = field(default_factory=dict)  # what a data set's file says (e.g. rpm)

    @property
    def frames(self):
        return self.samples.shape[0]

    @property
    def channels(self):
        return self.samples.shape[1]

    @property
    def seconds(self):
        return self.frames / self.rate

    def select(self, channels):
        """A view with only the given channel indices, in that order."""
        if channels is None:
            return self
        bad = [c for c in channels if not 0 <= c < self.channels]
        if bad:
            raise RecordingError("%s: has channels 0..%d, no channel %s: fix --channels"
                                 % (self.name, self.channels - 1, bad[0]))
        return Recording(self.name, self.rate, self.samples[:, list(channels)], self.scale,
                         self.info)


def load(path, rate=None):
    """Load a recording by its file extension; ``rate`` is required where the file has none."""
    path = Path(path)
    if not path.is_file():
        raise RecordingError("%s: no such file" % path)
    try:
        rec = _load_by_type(path, rate)
    except OSError as exc:  # permission denied, a file cut short, an I/O error
        raise RecordingError("%s: cannot read the recording (%s)"
                             % (path, exc.strerror or exc)) from exc
    return rec


def _load_by_type(path, rate):
    suffix = path.suffix.lower()
    if path.name.lower().endswith(".wfm.csv"):
        rec = _load_adi_csv(path)
    elif suffix == ".mat":
        rec = datasets.load_cwru(path, rate)
    elif datasets.is_ims_name(path):
        rec = datasets.load_ims(path, rate)
    elif datasets.is_pronostia_name(path):
        rec = datasets.load_pronostia(path, rate)
    elif suffix == ".wav":
        rec = _load_wav(path)
    elif suffix == ".csv":
        rec = _load_csv(path, rate)
    elif suffix in (".npy", ".npz"):
        rec = _load_numpy(path, rate)
    else:
        raise RecordingError("%s: unknown recording type %r: use .wav, .csv, .npy, .npz, a "
                             "CWRU .mat, an IMS snapshot or a PRONOSTIA acc_*.csv"
                             % (path, suffix))
    if rate is not None and suffix == ".wav" and not rates_match(rec.rate, rate):
        raise RecordingError("%s: the WAV header says %g Hz but --rate says %g Hz: drop --rate "
                             "or fix the file" % (path, rec.rate, rate))
    if rec.frames == 0:
        raise RecordingError("%s: holds no samples" % path)
    return rec


def time_order(recs):
    """The recordings in time order, taken from their names with numbers compared as numbers
    (acc_9 before acc_10; IMS names are time stamps, so 2003.10.22.12.06.24 before
    2003.10.22.12.16.24), folder by folder. Names are used rather than clocks: a clock of the day wraps at
    midnight, a file's number does not."""
    # The whole path: recordings of two folders (two runs) stay apart, each in its order.
    return sorted(recs, key=lambda r: datasets.natural_key(r.name))


def snapshot_times(recs):
    """Start of each recording (in the order given) in seconds from the first, from the time
    stamps of the files (``info['start_s']``: IMS names, PRONOSTIA clock columns), a day added
    wherever a clock of the day goes back; None when a recording has no time stamp."""
    clock = [r.info.get("start_s") for r in recs]
    if not recs or any(c is None for c in clock):
        return None
    times, day, prev = [], 0.0, clock[0]
    for c in clock:
        if c + day < prev - 1.0:  # the clock went back: past midnight
            day += 86400.0
        times.append(c + day - clock[0])
        prev = c + day
    return np.array(times)


def snapshot_interval(recs):
    """Median seconds between the starts of consecutive recordings (in time order), None when
    they carry no time stamps or start together."""
    times = snapshot_times(time_order(recs)) if len(recs) > 1 else None
    if times is None:
        return None
    step = float(np.median(np.diff(times)))
    return step if step > 0 else None


def rates_match(a, b):
    return abs(a - b) <= RATE_TOLERANCE * max(a, b)


WAV_PCM, WAV_FLOAT, WAV_EXTENSIBLE = 1, 3, 0xFFFE
WAV_SUPPORTED = "PCM int16 (format 1, 16 bits) or IEEE float32 (format 3, 32 bits)"


def wav_layout(head, size, need_data=True):
    """Where a WAV file's samples are, read exactly as the board reads it (device/vwatch/wav.py):
    chunks walked from byte 12, the RIFF size ignored, a data chunk longer than the file (a
    truncated copy, or a streaming writer's placeholder size) cut at the file's end.

    ``head``: the file's bytes (at least up to the data chunk's header); ``size``: the file's
    length. Returns a dict (code, channels, rate, align, bits, data, length); ValueError says
    what is wrong."""
    if len(head) < 12 or head[0:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ValueError("not a WAV file (no RIFF/WAVE header)")
    pos, fmt, data = 12, None, None
    while pos + 8 <= min(size, len(head)) and (fmt is None or (need_data and data is None)):
        cid = bytes(head[pos : pos + 4])
        clen = struct.unpack_from("<I", head, pos + 4)[0]
        body = pos + 8
        if cid == b"fmt ":
            n = min(clen, 40)
            if n < 16 or body + n > len(head):
                raise ValueError("its fmt chunk is %d bytes, shorter than 16" % clen)
            fmt = struct.unpack_from("<HHIIHH", head, body)
            if fmt[0] == WAV_EXTENSIBLE:
                if n < 40:
                    raise ValueError("its WAVE_FORMAT_EXTENSIBLE fmt chunk is %d bytes, not 40"
                                     % clen)
                fmt = (struct.unpack_from("<H", head, body + 24)[0],) + fmt[1:]
        elif cid == b"data":
            data = (body, max(0, min(clen, size - body)))
        pos = body + clen + (clen & 1)  # chunks are padded to an even length
    if fmt is None or (need_data and data is None):
        raise ValueError("no %s chunk" % ("fmt" if fmt is None else "data"))
    code, channels, rate, _, align, bits = fmt
    if not ((code == WAV_PCM and bits == 16) or (code == WAV_FLOAT and bits == 32)):
        raise ValueError("sample format %d with %d bits; vibrawatch and the board read %s: "
                         "convert it (e.g. `sox in.wav -b 16 out.wav`)" % (code, bits,
                                                                           WAV_SUPPORTED))
    if rate < 1:
        raise ValueError("its header says the sample rate is %d Hz; fix the header or write the "
                         "file again with its real rate" % rate)
    if channels < 1 or align != channels * bits // 8:
        raise ValueError("%d channels, %d bytes per frame: the header is inconsistent"
                         % (channels, align))
    body, length = data if data is not None else (0, 0)
    return dict(code=code, channels=channels, rate=rate, align=align, bits=bits, data=body,
                length=length)


def _wav_head(path):
    # The chunk headers up to the data chunk: read in steps (a LIST chunk may come first).
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = bytearray(fh.read(4096))
        while True:
            try:
                return wav_layout(head, size), size
            except ValueError:
                if len(head) >= size or len(head) >= 1 << 24:
                    raise
                head += fh.read(len(head))


def _load_wav(path):
    try:
        layout, _ = _wav_head(path)
    except ValueError as exc:
        raise RecordingError("%s: not a readable WAV file: %s" % (path, exc)) from exc
    dtype = np.dtype("<i2") if layout["code"] == WAV_PCM else np.dtype("<f4")
    frames = layout["length"] // layout["align"]
    if frames == 0:
        data = np.zeros((0, layout["channels"]), dtype)
    else:
        data = np.memmap(path, dtype, "r", offset=layout["data"],
                         shape=(frames, layout["channels"]))
    scale = 1.0 / 32768.0 if layout["code"] == WAV_PCM else 1.0
    return Recording(str(path), float(layout["rate"]), data, scale)


def _load_csv(path, rate):
    try:
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as exc:
        raise RecordingError("%s: not a text CSV file (%s): save it as UTF-8 text with a "
                             "header row" % (path, exc.reason)) from exc
    except csv.Error as exc:
        raise RecordingError("%s: unreadable CSV (%s)" % (path, exc)) from exc
    if not header:
        raise RecordingError("%s: empty CSV file" % path)
    if all(_is_number(cell) for cell in header):
        raise RecordingError("%s: the CSV has no header row: add one naming the columns "
                             "(e.g. time,x,y,z)" % path)
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordingError("%s: unreadable CSV row (%s): every row needs one number per "
                             "column" % (path, exc)) from exc
    if table.size == 0:
        raise RecordingError("%s: holds no samples" % path)
    if header[0].strip().lower() in TIME_COLUMNS:
        times, table = table[:, 0], table[:, 1:]
        steps = np.diff(times)
        if steps.size == 0 or not np.all(steps > 0):
            raise RecordingError("%s: the time column is not strictly increasing" % path)
        file_rate = 1.0 / float(np.median(steps))
        if not math.isfinite(file_rate):
            raise RecordingError("%s: the time column gives no sample rate" % path)
        if rate is not None and not rates_match(rate, file_rate):
            raise RecordingError("%s: the time column says %.6g Hz but --rate says %g Hz"
                                 % (path, file_rate, rate))
        rate = rate or file_rate
    if rate is None:
        raise RecordingError("%s: no time column, so give the sample rate with --rate HZ" % path)
    return Recording(str(path), float(rate), table.astype(np.float32))


def _load_numpy(path, rate):
    try:
        obj = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:  # OSError: an empty or cut-off file
        raise RecordingError("%s: not a readable NumPy file (%s): save it with numpy.save or "
                             "numpy.savez" % (path, exc or "empty file")) from exc
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            keys = list(obj.keys())
            for key in ("rate", "sample_rate", "fs"):
                if key in keys and rate is None:
                    rate = _npz_rate(path, key, obj[key])
            data_keys = [k for k in keys if k not in ("rate", "sample_rate", "fs")]
            single = data_keys[0] if len(data_keys) == 1 else None
            key = "data" if "data" in data_keys else single
            if key is None:
                raise RecordingError("%s: holds arrays %s; name the samples 'data'" % (path, keys))
            data = np.asarray(obj[key])
    else:
        data = obj
    if rate is None:
        raise RecordingError("%s: NumPy files carry no sample rate: give it with --rate HZ" % path)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise RecordingError("%s: array of shape %s; expected (frames, channels)"
                             % (path, data.shape))
    if data.shape[0] <= 8 < data.shape[1]:  # (channels, frames), as many tools store it
        data = data.T
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise RecordingError("%s: array of %s, not real numbers" % (path, data.dtype))
    # The numbers a WAV of the same array gives: int16 as PCM (1/32768), the rest as float32.
    if data.dtype == np.int16:
        return Recording(str(path), float(rate), data, 1.0 / 32768.0)
    return Recording(str(path), float(rate), np.asarray(data, np.float32))


def _npz_rate(path, key, value):
    value = np.asarray(value)
    if value.size != 1 or not (np.issubdtype(value.dtype, np.integer)
                               or np.issubdtype(value.dtype, np.floating)):
        raise RecordingError("%s: its %r is %s, not one number: store the sample rate as a "
                             "single value (np.savez(..., %s=20000)) or give --rate"
                             % (path, key, "an array of shape %s" % (value.shape,)
                                if value.size != 1 else value.dtype, key))
    rate = float(value.reshape(()))
    if not (math.isfinite(rate) and rate > 0):
        raise RecordingError("%s: its %r is %g, not a positive sample rate" % (path, key, rate))
    return rate


def _load_adi_csv(path):
    """Analog Devices CbM 'Wfm.csv': `time; x; y; z` in volts, zero-g volts on line 1.

    Converted to g as ADI's own loader does: 50 x (V - V0), i.e. 20 mV/g (ADXL356).
    """
    rows = []
    with open(path) as fh:
        for line in fh:
            cells = [c.strip() for c in line.split(";") if c.strip()]
            if cells:
                rows.append([float(c) for c in cells])
    if len(rows) < 2 or len(rows[0]) < 7:
        raise RecordingError("%s: not an Analog Devices Wfm.csv (line 1 needs 7 columns)" % path)
    zero_g = np.array(rows[0][4:7])
    table = np.array([r[:4] for r in rows])
    rate = 1.0 / float(np.median(np.diff(table[:, 0])))
    return Recording(str(path), rate, (50.0 * (table[:, 1:4] - zero_g)).astype(np.float32))


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False
