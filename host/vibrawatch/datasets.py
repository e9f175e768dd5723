"""Loaders for the public data sets the project is measured on (see ../shared/data/*/README.md).

Each returns a :class:`recordings.Recording`; :func:`recordings.load` picks them by file name:

- CWRU Bearing Data Center ``*.mat`` (MATLAB v5, read with ``scipy.io.loadmat``): channels
  drive end (``*_DE_time``) then fan end (``*_FE_time``), as stored (CWRU's units, taken as g).
  CWRU's files carry no sample rate: 12 kHz when the name says ``12k``, otherwise 48 kHz (the
  normal baselines and the ``48k_*`` files); ``--rate`` overrides. The measured shaft speed
  (``X###RPM``) is kept in ``Recording.info['rpm']``.
- IMS / NASA bearing snapshots: files named by their time stamp (``2003.10.22.12.06.24``),
  tab-separated ASCII, 8 columns (test 1) or 4 (tests 2 and 3). Sampled at 20 kHz according to
  the official readme (20 480 rows per 1-s snapshot make some users assume 20.48 kHz; pass
  ``--rate 20480`` for that).
- Analog Devices CbM ``*.Wfm.csv``: ``recordings._load_adi_csv`` (it predates this module).
- PRONOSTIA (FEMTO-ST, IEEE PHM 2012) snapshots ``acc_00001.csv``: no header, 6 columns (hour,
  minute, second, microsecond, horizontal g, vertical g), comma- or semicolon-separated (both
  occur in the challenge's runs), 25.6 kHz. Channels: horizontal, vertical. The clock of the
  first row goes to ``Recording.info['start_s']`` (seconds of the day) and the file's number
  to ``info['index']``; :func:`load_snapshot_folder` reads a folder of them in time order.

    rec = load_cwru("normal_0_97.mat")       # 2 channels (DE, FE) at 48 kHz
    rec = load_ims("2003.10.22.12.06.24")    # 8 channels at 20 kHz
"""

import re
from pathlib import Path

import numpy as np
import scipy.io

from .errors import VibrawatchError

CWRU_RATE = 48000.0
CWRU_RATE_12K = 12000.0
IMS_RATE = 20000.0
PRONOSTIA_RATE = 25600.0
PRONOSTIA_NAME = re.compile(r"^acc_(\d+)\.csv$", re.IGNORECASE)
IMS_NAME = re.compile(r"^\d{4}\.\d{2}\.\d{2}\.\d{2}\.\d{2}\.\d{2}$")
_CWRU_KEY = re.compile(r"^(X\d+)_(DE|FE)_time$")


class DatasetError(VibrawatchError):
    pass


def is_ims_name(path):
    return bool(IMS_NAME.match(Path(path).name))


def is_pronostia_name(path):
    return bool(PRONOSTIA_NAME.match(Path(path).name))


def natural_key(name):
    """Sort key that compares the digit runs of a name as numbers: acc_9 before acc_10."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p)
            for p in re.split(r"(\d+)", str(name)) if p]


def load_cwru(path, rate=None):
    from .recordings import Recording

    path = Path(path)
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError...: all "bad"
        raise DatasetError("%s: not a readable MATLAB file (%s): vibrawatch reads the CWRU "
                           "bearing data's .mat files" % (path, exc)) from exc
    groups = {}
    for key in mat:
        m = _CWRU_KEY.match(key)
        if m:
            groups.setdefault(m.group(1), {})[m.group(2)] = key
    if not groups:
        raise DatasetError("%s: no CWRU signal (no variable named like X097_DE_time); "
                           "variables: %s" % (path, ", ".join(k for k in mat if k[0] != "_")))
    if len(groups) > 1:  # a few CWRU files hold two records: take the one the name gives
        named = [g for g in groups if str(int(g[1:])) in re.findall(r"\d+", path.stem)]
        if len(named) != 1:
            raise DatasetError("%s: holds several records (%s) and its name does not say "
                               "which one: split the file" % (path, ", ".join(sorted(groups))))
        prefix = named[0]
    else:
        prefix = next(iter(groups))
    keys = [groups[prefix][c] for c in ("DE", "FE") if c in groups[prefix]]
    columns = [np.asarray(mat[k], np.float64).ravel() for k in keys]
    frames = min(len(c) for c in columns)
    data = np.stack([c[:frames] for c in columns], axis=1).astype(np.float32)
    if rate is None:
        rate = CWRU_RATE_12K if "12k" in path.name.lower() else CWRU_RATE
    info = {"dataset": "cwru", "channels": [k.split("_")[1] for k in keys]}
    rpm_key = prefix + "RPM"
    if rpm_key in mat:
        info["rpm"] = float(np.asarray(mat[rpm_key]).ravel()[0])
    return Recording(str(path), float(rate), data, 1.0, info)


def load_ims(path, rate=None):
    from .recordings import Recording

    path = Path(path)
    try:
        data = np.loadtxt(path, dtype=np.float32, ndmin=2)
    except ValueError as exc:
        raise DatasetError("%s: not an IMS bearing snapshot (%s): expected rows of 4 or 8 "
                           "tab-separated numbers" % (path, exc)) from exc
    if data.shape[1] not in (4, 8):
        raise DatasetError("%s: %d columns; IMS snapshots have 4 or 8" % (path, data.shape[1]))
    return Recording(str(path), float(rate or IMS_RATE), data, 1.0,
                     {"dataset": "ims", "start_s": _ims_seconds(path.name)})


def _ims_seconds(name):
    """Seconds since 2000 of an IMS file name (its time stamp), for ordering and intervals."""
    import calendar

    y, mo, d, h, mi, s = (int(p) for p in name.split("."))
    return float(calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) - 946684800)


def load_pronostia(path, rate=None):
    from .recordings import Recording

    path = Path(path)
    text = path.read_text()
    delimiter = ";" if ";" in text.split("\n", 1)[0] else ","
    lines = text.split()  # one row a line; much faster than np.loadtxt on 871 files
    try:
        table = np.array(",".join(lines).replace(delimiter, ",").split(","), np.float64)
        table = table.reshape(len(lines), -1)
    except ValueError as exc:
        raise DatasetError("%s: not a PRONOSTIA snapshot (%s): expected rows of 6 numbers "
                           "(hour, minute, second, microsecond, horizontal, vertical)"
                           % (path, exc)) from exc
    if table.shape[1] != 6:
        raise DatasetError("%s: %d columns; PRONOSTIA acc_*.csv files have 6 (hour, minute, "
                           "second, microsecond, horizontal, vertical)" % (path, table.shape[1]))
    h, m, s_, us = table[0, :4]
    info = {"dataset": "pronostia", "channels": ["horizontal", "vertical"],
            "start_s": float(3600 * h + 60 * m + s_ + 1e-6 * us),
            "index": int(PRONOSTIA_NAME.match(path.name).group(1))
            if is_pronostia_name(path) else None}
    return Recording(str(path), float(rate or PRONOSTIA_RATE),
                     table[:, 4:6].astype(np.float32), 1.0, info)


def load_snapshot_folder(folder, rate=None):
    """A folder of snapshots (PRONOSTIA ``acc_*.csv`` or IMS time-stamp files) as a list of
    recordings in time order (recordings.time_order)."""
    from .recordings import load, time_order

    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError("%s: not a folder of snapshots" % folder)
    paths = [p for p in folder.iterdir() if is_pronostia_name(p) or is_ims_name(p)]
    if not paths:
        raise DatasetError("%s: no snapshots in it (PRONOSTIA acc_00001.csv ... or IMS files "
                           "named like 2003.10.22.12.06.24)" % folder)
    return time_order([load(p, rate) for p in paths])
