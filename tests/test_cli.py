"""The `vibrawatch` command run for real: fit, score and info on bundled data, and bad input."""

import csv
import subprocess
import sys

import numpy as np
import pytest
import scipy.io.wavfile

import signals
from conftest import ROOT

DATA = ROOT / "host" / "vibrawatch" / "data"
NORMAL = DATA / "adi_1800rpm_normal.wav"
FAULTS = [DATA / "adi_1800rpm_outer_race.wav", DATA / "adi_1800rpm_imbalance.wav"]
# --zoom off: these tests pin a model without the zoom block (tests/test_zoom.py has its own)
SMALL = ["--window", "512", "--bands", "12", "--stats", "all", "--zoom", "off"]


def vibrawatch(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "vibrawatch", *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def refused(*args):
    """Run a command that must fail cleanly; return its error message."""
    proc = vibrawatch(*args, check=False)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.startswith("vibrawatch: error: "), proc.stderr
    return proc.stderr


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "adi.vwm"
    out = vibrawatch("fit", NORMAL, "-o", path, *SMALL).stdout
    assert "fitted on 116 windows, 38 held out, 45 features" in out
    assert path.is_file()
    return path


def write_wav(path, x, rate=20000):
    scipy.io.wavfile.write(path, rate, np.asarray(x))
    return path


def test_fit_score_info_on_the_bundled_data(model, tmp_path):
    info = vibrawatch("info", model).stdout
    for words in ("model id", "20000 Hz", "512 samples", "features     45", "log_kurtosis",
                  "3 of the last 5"):
        assert words in info
    table = tmp_path / "scores.csv"
    out = vibrawatch("score", model, NORMAL, *FAULTS, "--csv", table).stdout
    assert "outer_race" in out
    rows = list(csv.DictReader(open(table)))
    assert len(rows) == 3 * 155
    by_file = {}
    for row in rows:
        by_file.setdefault(row["file"], []).append(row)
    normal = by_file[str(NORMAL)]
    assert [int(r["window"]) for r in normal] == list(range(155))
    assert float(normal[1]["start_s"]) == pytest.approx(256 / 20000)
    # The threshold is the largest held-out normal score: none of the normal windows exceeds
    # it once read back from float32, and both faults are far above it.
    assert sum(int(r["above"]) for r in normal) == 0
    for fault in FAULTS:
        flags = [int(r["above"]) for r in by_file[str(fault)]]
        assert sum(flags) >= 0.99 * len(flags), fault


def test_help_teaches():
    out = vibrawatch("--help").stdout
    assert "typical session" in out and "fit" in out and "score" in out
    fit_help = vibrawatch("fit", "--help").stdout
    assert "--estimator" in fit_help and "ledoitwolf" in fit_help and "--holdout" in fit_help


def test_corrupt_model_files_are_refused(model, tmp_path):
    blob = model.read_bytes()
    cut = tmp_path / "cut.vwm"
    cut.write_bytes(blob[:-9])
    assert "truncated" in refused("score", cut, NORMAL)
    flipped = bytearray(blob)
    flipped[200] ^= 1
    bad = tmp_path / "flipped.vwm"
    bad.write_bytes(bytes(flipped))
    assert "CRC mismatch" in refused("info", bad)
    assert "not a vibrawatch model" in refused("info", NORMAL)


def test_recording_that_disagrees_with_the_model(model, tmp_path):
    two = write_wav(tmp_path / "two.wav", signals.make("random", 4000, 2, 512))
    assert "has 2 channels but model" in refused("score", model, two)
    slow = write_wav(tmp_path / "slow.wav", signals.make("random", 4000, 3, 512), rate=10000)
    assert "10000 Hz but the model was fitted at 20000 Hz" in refused("score", model, slow)
    short = write_wav(tmp_path / "short.wav", signals.make("random", 300, 3, 512))
    assert "shorter than one window" in refused("score", model, short)


def test_broken_wav_header(model, tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt \x02\x00")
    assert "not a readable WAV file" in refused("score", model, junk)
    assert "not a readable WAV file" in refused("fit", junk, "-o", tmp_path / "m.vwm")


def test_fit_refuses_unusable_normal_data(tmp_path):
    out = tmp_path / "m.vwm"
    short = write_wav(tmp_path / "short.wav", signals.make("random", 300, 3, 512))
    assert "shorter than one window" in refused("fit", short, "-o", out, *SMALL)
    few = write_wav(tmp_path / "few.wav", signals.make("random", 20000, 3, 1024))
    message = refused("fit", few, "-o", out, "--bands", "40", "--zoom", "off")
    assert "training windows for 120 features" in message and "fewer --bands" in message
    stuck = signals.make("random", 40000, 3, 512)
    stuck[:, 1] = 0.25
    stuck_wav = write_wav(tmp_path / "stuck.wav", stuck)
    assert "channel 1 is constant" in refused("fit", stuck_wav, "-o", out, *SMALL)
    nan = signals.make("random", 40000, 3, 512)
    nan[5000, 2] = np.nan
    assert "NaN" in refused("fit", write_wav(tmp_path / "nan.wav", nan), "-o", out, *SMALL)
    other_rate = write_wav(tmp_path / "r.wav", signals.make("random", 40000, 3, 512), 10000)
    assert "fit one model per sample rate" in refused("fit", NORMAL, other_rate, "-o", out)
    assert not out.exists()


def test_other_recording_formats(tmp_path):
    x = signals.make("random", 20000, 3, 512, seed=9)
    np.save(tmp_path / "x.npy", x)
    assert "--rate" in refused("fit", tmp_path / "x.npy", "-o", tmp_path / "m.vwm")
    vibrawatch("fit", tmp_path / "x.npy", "--rate", "20000", "-o", tmp_path / "npy.vwm", *SMALL)
    np.savez(tmp_path / "x.npz", data=x.T, rate=20000.0)  # (channels, frames) is accepted too
    vibrawatch("fit", tmp_path / "x.npz", "-o", tmp_path / "npz.vwm", *SMALL)
    with open(tmp_path / "x.csv", "w") as fh:
        fh.write("time,x,y,z\n")
        for i, row in enumerate(x):
            fh.write("%.6f,%r,%r,%r\n" % (i / 20000, *map(float, row)))
    vibrawatch("fit", tmp_path / "x.csv", "-o", tmp_path / "csv.vwm", *SMALL)
    assert "--rate says 1000 Hz" in refused("fit", tmp_path / "x.csv", "--rate", "1000",
                                            "-o", tmp_path / "m.vwm")
    # Same samples, same features: the three models are identical but for their fit time.
    blobs = [(tmp_path / n).read_bytes() for n in ("npy.vwm", "npz.vwm", "csv.vwm")]
    strip = lambda b: b[:48] + b[52:-4]  # noqa: E731  (drop 'created' and the CRC)
    assert strip(blobs[0]) == strip(blobs[1]) == strip(blobs[2])
