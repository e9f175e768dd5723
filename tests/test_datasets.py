"""The public data sets' file layouts, written small in tmp_path, read through recordings.load."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from vibrawatch import datasets, recordings, simulate


def write_cwru(path, number=97, frames=4000, fe=True, rpm=1796, extra=None):
    rng = np.random.default_rng(number)
    mat = {"X%03d_DE_time" % number: rng.normal(size=(frames, 1)),
           "X%03dRPM" % number: np.array([[rpm]], np.uint16)}
    if fe:
        mat["X%03d_FE_time" % number] = rng.normal(size=(frames, 1))
    mat.update(extra or {})
    scipy.io.savemat(path, mat)
    return mat


def test_cwru_mat_drive_end_then_fan_end_at_48k(tmp_path):
    mat = write_cwru(tmp_path / "normal_0_97.mat")
    rec = recordings.load(tmp_path / "normal_0_97.mat")
    assert (rec.rate, rec.channels, rec.frames) == (48000.0, 2, 4000)
    np.testing.assert_allclose(rec.samples[:, 0], mat["X097_DE_time"][:, 0], rtol=1e-6)
    np.testing.assert_allclose(rec.samples[:, 1], mat["X097_FE_time"][:, 0], rtol=1e-6)
    assert rec.info["rpm"] == 1796 and rec.info["channels"] == ["DE", "FE"]
    write_cwru(tmp_path / "12k_Drive_End_IR007_0_105.mat", 105, fe=False)
    rec = recordings.load(tmp_path / "12k_Drive_End_IR007_0_105.mat")
    assert (rec.rate, rec.channels) == (12000.0, 1)
    assert recordings.load(tmp_path / "normal_0_97.mat", rate=12000).rate == 12000


def test_cwru_file_with_two_records_takes_the_named_one(tmp_path):
    other = {"X098_DE_time": np.zeros((10, 1))}
    write_cwru(tmp_path / "99.mat", 99, extra=other)
    assert recordings.load(tmp_path / "99.mat").frames == 4000
    write_cwru(tmp_path / "both.mat", 99, extra=other)
    with pytest.raises(datasets.DatasetError, match="several records"):
        recordings.load(tmp_path / "both.mat")


def test_bad_cwru_files(tmp_path):
    scipy.io.savemat(tmp_path / "other.mat", {"signal": np.zeros((10, 1))})
    with pytest.raises(datasets.DatasetError, match="no CWRU signal"):
        recordings.load(tmp_path / "other.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(datasets.DatasetError, match="not a readable MATLAB file"):
        recordings.load(tmp_path / "junk.mat")


def test_ims_snapshot_eight_columns_at_20k(tmp_path):
    x = np.round(simulate.machine(0.5, 20000, 8, seed=1), 3)
    path = tmp_path / "2003.10.22.12.06.24"
    np.savetxt(path, x, fmt="%.3f", delimiter="\t")
    rec = recordings.load(path)
    assert (rec.rate, rec.channels, rec.frames) == (20000.0, 8, 10000)
    np.testing.assert_allclose(rec.samples, x, atol=1e-6)
    assert recordings.load(path, rate=20480).rate == 20480
    bad = tmp_path / "2004.02.12.10.32.39"
    np.savetxt(bad, x[:, :3], fmt="%.3f", delimiter="\t")
    with pytest.raises(datasets.DatasetError, match="3 columns"):
        recordings.load(bad)


def test_fit_on_a_cwru_file_from_the_command_line(tmp_path):
    x = simulate.machine(1.5, 48000, 2, seed=2)
    scipy.io.savemat(tmp_path / "normal_0_97.mat", {"X097_DE_time": x[:, :1].astype(float),
                                                    "X097_FE_time": x[:, 1:].astype(float)})
    proc = subprocess.run([sys.executable, "-m", "vibrawatch", "fit",
                           str(tmp_path / "normal_0_97.mat"), "-o", str(tmp_path / "m.vwm")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "false alarms" in proc.stdout
