"""Model files on the host: round trip, documented sizes, and every defect refused; format v3
(zoom block, K components, flags, channel map) on host and board, both readers refusing the
same defects with the same words (v2, the PCA reduction: tests/test_pca.py)."""

import struct
import zlib

import numpy as np
import pytest

import signals
from conftest import ROOT
from device_support import load_on_board
from vibrawatch import features as F
from vibrawatch import modelfile


def make_model(channels=3, bands=16, stats=7, window=1024, modes=1, zoom=None, **v3):
    """A valid model; ``zoom`` = (R, N_z, B_z) adds a zoom block, ``modes`` components, ``v3``
    further v3 fields (flags, input_channels)."""
    zoom_r, zoom_n, zoom_b = zoom or (0, 0, 0)
    d = channels * (bands + bin(stats).count("1") + zoom_b)
    modes = [modelfile.Mode(*signals.random_factor(d, seed=k)) for k in range(modes)]
    return modelfile.Model.from_modes(
        modes, sample_rate=20000.0, window=window, hop=window // 2, channels=channels,
        edges=F.default_band_edges(window, bands), stats=stats, epsilon=1.5e-7,
        threshold=42.5, clear_threshold=40.0, alarm_k=3, alarm_n=5, n_train=1234,
        created=1_790_000_000, zoom_r=zoom_r, zoom_window=zoom_n,
        zoom_edges=F.default_band_edges(zoom_n, zoom_b) if zoom_b else None, **v3)


def with_version(blob, version):
    """A model file's bytes relabelled as ``version`` (valid CRC): v1 and v2 files have the
    layout of a v3 file with no zoom block, K = 1 and no channel map."""
    body = bytearray(blob[:-4])
    struct.pack_into("<H", body, 4, version)
    return _with_crc(bytes(body))


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
    version[4] = 4
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
        "version": (_with_crc(bytes(version)),
                    "version 4, this vibrawatch reads versions 1, 2 and 3"),
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


# ---- format v3: zoom block, K components, flags, channel map, on host and board ------------

ZOOM = (16, 256, 8)  # R, N_z, B_z: 20 kHz / 16 / 256 = 4.9 Hz bins


def v3_model(**kw):
    args = dict(zoom=ZOOM, modes=2, flags=modelfile.FLAG_LEARNED, input_channels=(2, 0, 1))
    args.update(kw)
    return make_model(**args)


LOAD_REPORT = """
    ze = list(m.zoom_edges) if m.zoom_edges is not None else None
    cm = list(m.channel_map) if m.channel_map is not None else None
    sums = ' '.join('%.9g' % sum(x) for c in m.comps for x in c if x is not None)
    print('OK|%d|%d|%d|%d|%d|%s|%d|%s|%d|%s|%s' % (
        m.version, m.k, m.zoom_r, m.zoom_window, m.zoom_bands, ze, m.flags, cm, m.d,
        m.mu is m.comps[0][0] and m.lp is m.comps[0][1], sums))
"""


def board_load(micropython, paths):
    """Each model file as the board loads it: ['OK', fields...] or ['ERR', message]."""
    return load_on_board(micropython, paths, LOAD_REPORT, heap="1M")


def host_row(model, version=3):
    ze = model.zoom_edges.tolist() if model.zoom_edges is not None else None
    cm = list(model.input_channels) if model.input_channels is not None else None
    return ["OK", str(version), str(model.n_modes), str(model.zoom_r), str(model.zoom_window),
            str(model.zoom_bands), str(ze), str(model.flags), str(cm), str(model.n_features),
            "True"]


def test_v3_round_trip_on_host_and_board(micropython, tmp_path):
    model = v3_model()
    path = model.write(tmp_path / "v3.vwm")
    blob = path.read_bytes()
    assert struct.unpack_from("<H", blob, 4)[0] == 3
    assert tuple(blob[52:59]) == (16, 8, 0, 1, 2, 1, 3) and blob[59:64] == bytes(5)
    assert struct.unpack_from("<H", blob, 54)[0] == 256
    d = 3 * (16 + 3 + 8)
    assert model.n_features == d and model.n_modes == 2 and model.learned
    # edges, zoom edges, channel map, 2 bytes of padding, then mu and L of each component
    assert len(blob) == 64 + 2 * 17 + 2 * 9 + 3 + 1 + 2 * 4 * (d + d * (d + 1) // 2) + 4
    assert len(blob) == 64 + model.array_bytes + 1 + 4
    back = modelfile.read(path)
    assert back.to_bytes() == blob and back.model_id == model.model_id
    assert (back.zoom_r, back.zoom_window, back.zoom_bands) == (16, 256, 8)
    np.testing.assert_array_equal(back.zoom_edges, model.zoom_edges)
    assert back.input_channels == (2, 0, 1) and back.flags == 1 and back.read_version == 3
    for mine, theirs in zip(model.modes, back.modes, strict=True):
        np.testing.assert_array_equal(mine.mu, theirs.mu)
        np.testing.assert_array_equal(mine.packed_l, theirs.packed_l)
    ((*fields, sums),) = board_load(micropython, [path])
    assert fields == host_row(model)  # the last field: m.mu and m.lp are component 0's
    host_sums = [float(np.sum(x, dtype=np.float64)) for m in model.modes for x in m.arrays()]
    np.testing.assert_allclose([float(x) for x in sums.split()], host_sums, rtol=1e-6)


def test_defaults_are_one_component_no_zoom_no_map():
    model = make_model()
    assert (model.n_modes, model.zoom_r, model.zoom_bands, model.flags) == (1, 0, 0, 0)
    assert model.input_channels is None and not model.learned and model.n_features == 57
    blob = model.to_bytes()
    assert tuple(blob[52:64]) == (0, 0, 0, 0, 1) + (0,) * 7


def test_v1_and_v2_files_read_as_v3_with_none_of_it(micropython, tmp_path):
    model = make_model()
    paths = []
    for version in (1, 2, 3):
        paths.append(tmp_path / ("v%d.vwm" % version))
        paths[-1].write_bytes(with_version(model.to_bytes(), version))
    for version, path, row in zip((1, 2, 3), paths, board_load(micropython, paths)):
        back = modelfile.read(path)
        assert back.read_version == version and back.n_modes == 1 and back.zoom_r == 0
        assert row[:-1] == host_row(back, version), row
    # A v1/v2 file's tail is reserved, so its bytes are not read as v3 fields: a v3 file with
    # two components labelled version 2 is one component too short of features, not K = 2.
    bad = tmp_path / "v2k2.vwm"
    bad.write_bytes(with_version(v3_model(zoom=None).to_bytes(), 2))
    with pytest.raises(modelfile.ModelFileError, match="arrays need"):
        modelfile.read(bad)
    assert board_load(micropython, [bad])[0][0] == "ERR"


def test_score_is_the_smallest_distance_over_components():
    model = v3_model(zoom=None)
    d = model.n_features
    rng = np.random.default_rng(5)
    near = [m.mu + rng.normal(scale=0.3, size=(4, d)) for m in model.modes]
    feats = np.concatenate(near)
    by_mode = np.stack([
        np.einsum("ij,jk,ik->i", feats - m.mu, model.precision(k), feats - m.mu)
        for k, m in enumerate(model.modes)], axis=1)
    np.testing.assert_allclose(model.mode_distances(feats), by_mode, rtol=1e-9)
    np.testing.assert_allclose(model.mahalanobis(feats), by_mode.min(axis=1), rtol=1e-9)
    assert model.nearest_mode(feats).tolist() == [0] * 4 + [1] * 4


def _v3_defects(good):
    def fixed(offset, fmt, value):  # a change with a valid CRC: only validation can catch it
        body = bytearray(good[:-4])
        struct.pack_into(fmt, body, offset, value)
        return _with_crc(bytes(body))

    zpos = 64 + 2 * 17  # the zoom edges, after the 17 band edges
    mpos = zpos + 2 * 9  # the channel map
    zoom = "is invalid (need all zero, or R in 2..64"
    return {
        "version 4": (fixed(4, "<H", 4), "version 4, this"),
        "R does not divide N": (fixed(52, "B", 24), "zoom block R=24, N_z=256, B_z=8 " + zoom),
        "R = 1": (fixed(52, "B", 1), "zoom block R=1"),
        "R = 0 with a zoom": (fixed(52, "B", 0), "zoom block R=0, N_z=256, B_z=8 " + zoom),
        "N_z not a power of two": (fixed(54, "<H", 200), "zoom block R=16, N_z=200"),
        "N_z too small": (fixed(54, "<H", 8), "zoom block R=16, N_z=8"),
        "B_z = 0": (fixed(53, "B", 0), "zoom block R=16, N_z=256, B_z=0"),
        "B_z vs d": (fixed(53, "B", 7), "81 features do not match 3 channels x (16 bands + 3 "
                     "statistics + 7 zoom bands)"),
        "zoom edges repeat": (fixed(zpos + 4, "<H", 2), "zoom band edges [1, 2, 2,"),
        "zoom edge too high": (fixed(zpos + 16, "<H", 130), "within 0..129"),
        "K = 0": (fixed(56, "B", 0), "0 Gaussian components (operating modes), need 1..4"),
        "K = 5": (fixed(56, "B", 5), "5 Gaussian components"),
        "K = 1 for 2": (fixed(56, "B", 1), "arrays need"),
        "flag": (fixed(57, "B", 3), "unknown flag bits 0x02"),
        "map size": (fixed(58, "B", 2), "channel map of 2 entries for 3 channels (need 0 or 3)"),
        "map repeats": (fixed(mpos + 1, "B", 2), "channel map [2, 2, 1] is invalid"),
        "map 255": (fixed(mpos, "B", 255), "channel map [255, 0, 1] is invalid"),
        "reserved": (fixed(61, "B", 1), "reserved header bytes 59..63 are not zero"),
        "NaN in component 1": (fixed(len(good) - 8, "<f", float("nan")), "NaN or infinity"),
        "corrupt component 1": (good[:-12] + bytes([good[-12] ^ 1]) + good[-11:],
                                "CRC mismatch"),
    }


def test_both_readers_refuse_invalid_v3_files_with_the_same_reason(micropython, tmp_path):
    good = v3_model().to_bytes()
    assert struct.unpack_from("<H", good, 64 + 34)[0] == 1  # the zoom edges where expected
    defects = _v3_defects(good)
    paths = []
    for i, (blob, _) in enumerate(defects.values()):
        paths.append(tmp_path / ("bad%d.vwm" % i))
        paths[-1].write_bytes(blob)
    board = board_load(micropython, paths)
    for (name, (_, words)), path, row in zip(defects.items(), paths, board, strict=True):
        with pytest.raises(modelfile.ModelFileError) as err:
            modelfile.read(path)
        host = str(err.value)
        assert words in host, (name, host)
        assert row[0] == "ERR", (name, row)
        if name == "version 4":  # the reader names itself
            host = host.replace("vibrawatch reads", "vwatch reads").split(";")[0]
            row[1] = row[1].split(";")[0]
        assert row[1] == host, name


def test_writer_refuses_a_bad_channel_map():
    with pytest.raises(ValueError, match="input channels"):
        v3_model(input_channels=(0, 1, 300)).to_bytes()
    with pytest.raises(modelfile.ModelFileError, match="channel map"):
        v3_model(input_channels=(0, 1)).to_bytes()


def test_documented_v3_example_size():
    size = len(v3_model().to_bytes())
    assert size == 27340
    assert "27 340-byte file" in (ROOT / "docs" / "model-format.md").read_text()
