"""Model file v1 on the host: round trip, documented sizes, and every defect refused (v2, the
PCA reduction: tests/test_pca.py)."""

import struct
import zlib

import numpy as np
import pytest

import signals
from conftest import ROOT
from vibrawatch import features as F
from vibrawatch import modelfile


def make_model(channels=3, bands=16, stats=7, window=1024):
    d = channels * (bands + bin(stats).count("1"))
    mu, packed = signals.random_factor(d)
    return modelfile.Model(
        sample_rate=20000.0, window=window, hop=window // 2, channels=channels,
        edges=F.default_band_edges(window, bands), stats=stats, epsilon=1.5e-7, mu=mu,
        packed_l=packed, threshold=42.5, clear_threshold=40.0, alarm_k=3, alarm_n=5,
        n_train=1234, created=1_790_000_000)


def test_round_trip_keeps_every_field(tmp_path):
    model = make_model()
    path = model.write(tmp_path / "m.vwm")
    back = modelfile.read(path)
    assert back.to_bytes() == model.to_bytes() == path.read_bytes()
    for name in ("sample_rate", "window", "hop", "channels", "stats", "threshold", "alarm_k",
                 "alarm_n", "estimator", "n_train", "created"):
        assert getattr(back, name) == getattr(model, name), name
    assert back.epsilon == pytest.approx(1.5e-7, rel=1e-7)
    assert back.clear_threshold == 40.0
    np.testing.assert_array_equal(back.edges, model.edges)
    assert back.model_id == model.model_id == "%08x" % zlib.crc32(path.read_bytes()[:-4])
    np.testing.assert_array_equal(back.packed_l, model.packed_l)


@pytest.mark.parametrize("channels,bands,stats,size", [(3, 16, 7, 6944), (8, 12, 0, 19104)])
def test_documented_example_sizes(channels, bands, stats, size):
    assert len(make_model(channels, bands, stats).to_bytes()) == size
    doc = (ROOT / "docs" / "model-format.md").read_text()
    assert "{:,}-byte file".format(size).replace(",", " ") in doc


def test_cholesky_factor_unpacks_the_packed_columns():
    model = make_model(channels=1, bands=4, stats=0, window=64)
    lower = model.cholesky_factor()
    assert np.allclose(lower, np.tril(lower))
    assert lower[1, 0] == model.packed_l[1] and lower[1, 1] == model.packed_l[4]


def _with_crc(body):
    return body + struct.pack("<I", zlib.crc32(body))


def _defects():
    good = make_model().to_bytes()
    body = bytearray(good[:-4])
    flipped = bytearray(good)
    flipped[300] ^= 0x10
    magic = bytearray(body)
    magic[0:4] = b"RIFF"
    version = bytearray(body)
    version[4] = 3
    dims = bytearray(body)
    dims[28] += 1  # features field no longer C x (B + stats)
    window = bytearray(body)
    struct.pack_into("<H", window, 16, 1000)
    alarm = bytearray(body)
    alarm[30] = 9  # k > n
    threshold = bytearray(body)
    struct.pack_into("<f", threshold, 36, float("nan"))
    return {
        "truncated": (good[:-100], "truncated"),
        "tiny": (good[:10], "shorter than a model header"),
        "flipped byte": (bytes(flipped), "CRC mismatch"),
        "magic": (_with_crc(bytes(magic)), "not a vibrawatch model"),
        "version": (_with_crc(bytes(version)), "version 3, this vibrawatch reads versions 1 and"),
        "dims": (_with_crc(bytes(dims)), "do not match"),
        "window": (_with_crc(bytes(window)), "not a power of two"),
        "alarm": (_with_crc(bytes(alarm)), "alarm rule 9 of 5"),
        "threshold": (_with_crc(bytes(threshold)), "threshold nan"),
    }


@pytest.mark.parametrize("name", sorted(_defects()))
def test_defective_files_are_refused_with_the_reason(tmp_path, name):
    blob, words = _defects()[name]
    path = tmp_path / "bad.vwm"
    path.write_bytes(blob)
    with pytest.raises(modelfile.ModelFileError) as err:
        modelfile.read(path)
    assert words in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(modelfile.ModelFileError, match="cannot read the model file"):
        modelfile.read(tmp_path / "nope.vwm")


def test_write_is_atomic_and_never_writes_an_invalid_model(tmp_path):
    path = make_model().write(tmp_path / "m.vwm")
    before = path.read_bytes()
    bad = make_model()
    bad.threshold = -1.0
    with pytest.raises(modelfile.ModelFileError):
        bad.write(path)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.tmp"))
