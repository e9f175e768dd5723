"""The PCA reduction (model format v2) end to end: the fit against scikit-learn's probabilistic
PCA, the file on host and board, refusals, the CLI, and the residual term at work.

Board code runs for real under MicroPython's unix port (from source, 64 KB heap); the
host/board score agreement on recordings, per backend, is in tests/test_host_board_agree.py.
"""

import csv
import re
import struct
import zlib

import numpy as np
import pytest
import scipy.io.wavfile
from sklearn.decomposition import PCA

from conftest import ROOT
from device_support import load_on_board
from test_cli import refused, vibrawatch
from vibrawatch import features as F
from vibrawatch import fitting, modelfile, simulate
from vibrawatch.pca import PCAPrecision
from vibrawatch.recordings import Recording

RATE = 8000
K = 6


def correlated(n, d, rank, seed=0):
    """n rows of d features: ``rank`` strong common factors plus weak independent noise."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(rank, d)) * rng.uniform(0.2, 2.0, d)
    return rng.normal(size=(n, rank)) @ mix + 0.3 * rng.normal(size=(n, d)) - 4.0


def pca_model(channels=3, bands=16, stats=7, p=K, window=1024, seed=0):
    """A valid v2 model whose arrays are a real PCA fit of correlated random features."""
    d = channels * (bands + bin(stats).count("1"))
    est = PCAPrecision(p, "ledoitwolf").fit(correlated(4 * d, d, p, seed))
    return modelfile.Model(
        sample_rate=20000.0, window=window, hop=window // 2, channels=channels,
        edges=F.default_band_edges(window, bands), stats=stats, epsilon=1.5e-7,
        mu=est.location_.astype(np.float32), packed_l=None, w=est.w_.astype(np.float32),
        a=est.a_.astype(np.float32), g=est.g_.astype(np.float32), threshold=float(d),
        clear_threshold=d / 2.0, n_train=4 * d, created=1_790_000_000)


LOAD_REPORT = """
    arrays = (m.w, m.a, m.g) if m.p else (m.lp,)
    print('OK|%d|%d|%d|%s|%s' % (m.p, m.d, m.lp is None,
          ' '.join('%.9g' % sum(x) for x in arrays), ' '.join('%d' % len(x) for x in arrays)))
"""


def board_load(micropython, paths):
    """Load each model file on the board: ('OK', p, d, checksums) or ('ERR', message)."""
    # Models stay loaded side by side here: a 64 KB heap, fragmented by compiling the loader
    # from source, does not always hold two of them.
    return load_on_board(micropython, paths, LOAD_REPORT, heap="256K")


def board_scores(micropython, path, rows):
    """vwatch.float_score.score of feature rows (float32) under the model file at ``path``, on
    the board; the rows travel as a float32 file beside the model."""
    rows = np.asarray(rows, "<f4")
    feats = path.with_suffix(".f32")
    feats.write_bytes(rows.tobytes())
    code = """
from array import array
from vwatch import model, float_score
m = model.load(%r)
f = array('f', range(m.d))
v = array('f', range(m.d))
with open(%r, 'rb') as fh:
    while fh.readinto(f) == 4 * m.d:
        print('%%.9g' %% float_score.score(m, f, v))
""" % (str(path), str(feats))
    return np.array([float(s) for s in micropython.run(code).split()])


# ---- the fit ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def machine():
    """40 s of a simulated 2-channel machine: 624 windows of 32 features."""
    return simulate.machine(40, RATE, 2, seed=21)


def test_score_is_v_P_v_with_the_precision_of_sklearns_ppca(machine):
    settings = fitting.FitSettings(window=1024, hop=512, estimator="empirical", pca=K)
    model, report = fitting.fit([Recording("normal", RATE, machine)], settings)
    assert model.components == K and model.version == 3 and model.packed_l is None
    cfg = F.FeatureConfig.from_model(model)
    feats = F.extract(machine, cfg)
    train = feats[fitting.split_windows(len(feats), cfg, settings.holdout)[0]].astype(float)
    n, d = train.shape
    assert report.n_train == n and d == 32
    # scikit-learn's PPCA on the standardised features; its covariance has ddof=1, the
    # empirical estimator's ddof=0, hence n/(n-1). A uniform scale of s cancels out.
    mean, s = train.mean(axis=0), train.std(axis=0)
    assert s.min() > 1e-3  # no feature floored (pca.MIN_SCALE)
    ppca = PCA(n_components=K).fit((train - mean) / s)
    precision = ppca.get_precision() * n / (n - 1) / np.outer(s, s)
    est = PCAPrecision(K, "empirical").fit(train)
    np.testing.assert_allclose(est.precision_, precision, rtol=1e-8, atol=1e-10)
    v = feats - mean
    expected = np.einsum("ij,jk,ik->i", v, precision, v)
    np.testing.assert_allclose(est.mahalanobis(feats), expected, rtol=1e-9)
    # The model file's float32 arrays, as the board scores them.
    np.testing.assert_allclose(model.mahalanobis(feats), expected, rtol=1e-3)
    np.testing.assert_allclose(model.precision(), precision, rtol=1e-4, atol=1e-5)


def test_cross_validation_refits_the_reduction_in_every_fold(machine):
    # A reduction fitted once on all the training windows would have seen every held-out
    # block: its scores there would be in-sample, biased low.
    cfg = F.FeatureConfig(1024, 512, RATE, 2, F.default_band_edges(1024, 16), 1e-6, 0)
    train = F.extract(machine[: 6 * RATE], cfg).astype(float)  # 92 windows, 32 features
    cv = np.concatenate(fitting.cross_validated_scores([train], cfg, "ledoitwolf", K))
    # Fold 3 by hand: blocks of 9 or 10 windows, and the window overlapping either side of
    # the block (N = 2 hops) left out of the fit.
    lo, hi = np.linspace(0, len(train), 11).astype(int)[3:5]
    keep = np.r_[0 : lo - 1, hi + 1 : len(train)]
    fold = PCAPrecision(K, "ledoitwolf").fit(train[keep]).mahalanobis(train[lo:hi])
    np.testing.assert_allclose(cv[lo:hi], fold, rtol=1e-12)
    in_sample = PCAPrecision(K, "ledoitwolf").fit(train).mahalanobis(train)
    assert np.mean(cv) > np.mean(in_sample) and not np.allclose(cv, in_sample, rtol=0.01)


# ---- the file --------------------------------------------------------------------------------

def test_v2_round_trip_on_host_and_board(micropython, tmp_path):
    model = pca_model()
    path = model.write(tmp_path / "pca.vwm")
    blob = path.read_bytes()
    assert struct.unpack_from("<HH", blob, 4)[0] == 3
    assert struct.unpack_from("<H", blob, 18)[0] == K
    d = model.n_features
    assert len(blob) == 64 + 2 * 17 + 2 + 4 * (d + d + K * d + K) + 4 == 64 + model.array_bytes + 2 + 4
    back = modelfile.read(path)
    assert back.to_bytes() == blob and back.model_id == model.model_id
    assert back.components == K and back.packed_l is None and back.a.shape == (K, d)
    for name in ("mu", "w", "a", "g"):
        np.testing.assert_array_equal(getattr(back, name), getattr(model, name))
    ((tag, p, bd, no_lp, sums, lens),) = board_load(micropython, [path])
    assert (tag, int(p), int(bd), no_lp) == ("OK", K, d, "1")
    assert lens.split() == [str(d), str(K * d), str(K)]
    host_sums = [float(np.sum(x, dtype=np.float64)) for x in (model.w, model.a, model.g)]
    np.testing.assert_allclose([float(x) for x in sums.split()], host_sums, rtol=1e-6)
    # Host and board compute the same score from the same arrays.
    rng = np.random.default_rng(3)
    rows = (model.mu + rng.normal(scale=0.5, size=(5, d))).astype(np.float32)
    np.testing.assert_allclose(board_scores(micropython, path, rows), model.mahalanobis(rows),
                               rtol=1e-6)


def test_v1_and_v2_files_without_reduction_still_read_everywhere(micropython, tmp_path):
    from test_modelfile import make_model, with_version

    model = make_model()
    blob = model.to_bytes()
    assert struct.unpack_from("<H", blob, 4)[0] == 3 and blob[18:20] == b"\0\0"
    # A version 1 file, and a version-2 file with p = 0, have the v3 layout of a model with
    # no zoom block, K = 1 and no channel map: both readers take them as they are.
    path = tmp_path / "v1.vwm"
    path.write_bytes(with_version(blob, 1))
    assert modelfile.read(path).components == 0 and modelfile.read(path).read_version == 1
    v2_path = tmp_path / "v2p0.vwm"
    v2_path.write_bytes(with_version(blob, 2))
    np.testing.assert_array_equal(modelfile.read(v2_path).packed_l, model.packed_l)
    rows = board_load(micropython, [path, v2_path])
    assert rows[0][:4] == ["OK", "0", str(model.n_features), "0"] and rows[1][1:] == rows[0][1:]
    rng = np.random.default_rng(4)
    feats = (model.mu + rng.normal(scale=0.5, size=(3, model.n_features))).astype(np.float32)
    np.testing.assert_allclose(board_scores(micropython, path, feats),
                               model.mahalanobis(feats), rtol=1e-6)


@pytest.mark.parametrize("channels,bands,stats,p,size", [
    (8, 12, 0, 8, 3968), (8, 32, 7, 16, 20360), (8, 32, 7, 0, 158616)])
def test_documented_example_sizes(channels, bands, stats, p, size):
    from test_modelfile import make_model

    model = pca_model(channels, bands, stats, p) if p else make_model(channels, bands, stats)
    assert len(model.to_bytes()) == size
    doc = (ROOT / "docs" / "model-format.md").read_text()
    assert "{:,}-byte file".format(size).replace(",", " ") in doc


def _defects(good):
    d = 3 * (16 + 3)
    pos_w = 64 + 2 * 17 + 2 + 4 * d  # after the edges, padding and mu
    pos_a = pos_w + 4 * d

    def fixed(offset, fmt, value):  # a change with a valid CRC: only validation can catch it
        body = bytearray(good[:-4])
        struct.pack_into(fmt, body, offset, value)
        return bytes(body) + struct.pack("<I", zlib.crc32(body))

    flipped = bytearray(good)
    flipped[pos_a + 8] ^= 0x10
    return {
        "truncated": (good[:-8], "but its header says"),
        "corrupt": (bytes(flipped), "CRC mismatch"),
        "version 1 with p": (fixed(4, "<H", 1), "%d PCA components for %d features in a "
                             "version 1 file" % (K, d)),
        "p = d": (fixed(18, "<H", d), "%d PCA components for %d features in a version 3"
                  % (d, d)),
        "p too small for the size": (fixed(18, "<H", K - 1), "arrays need"),
        "w not positive": (fixed(pos_w + 12, "<f", -0.5), "w is -0.5, not positive"),
        "w zero": (fixed(pos_w, "<f", 0.0), "w is 0.0, not positive"),
        "NaN in w": (fixed(pos_w + 4, "<f", float("nan")), "arrays hold NaN or infinity"),
        "NaN in A": (fixed(pos_a + 20, "<f", float("nan")), "arrays hold NaN or infinity"),
        "inf in g": (fixed(len(good) - 8, "<f", float("inf")), "arrays hold NaN or infinity"),
        "version 4": (fixed(4, "<H", 4), "version 4, this"),
    }


def test_both_readers_refuse_invalid_v2_files_with_the_same_reason(micropython, tmp_path):
    good = pca_model().to_bytes()
    defects = _defects(good)
    paths = []
    for i, (blob, _) in enumerate(defects.values()):
        paths.append(tmp_path / ("bad%d.vwm" % i))
        paths[-1].write_bytes(blob)
    board = board_load(micropython, paths)
    for (name, (_, words)), path, row in zip(defects.items(), paths, board):
        with pytest.raises(modelfile.ModelFileError) as err:
            modelfile.read(path)
        host = str(err.value)
        assert words in host, (name, host)
        assert row[0] == "ERR", (name, row)
        # The same file, problem and fix, word for word (but for the reader's name on a
        # version it does not read).
        if name == "version 4":
            host = host.replace("vibrawatch reads", "vwatch reads").split(";")[0]
            row[1] = row[1].split(";")[0]
        assert row[1] == host, name


# ---- the command line ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pca")
    out = {}
    for name, x in (("normal", simulate.machine(40, RATE, 2, seed=21)),
                    ("later", simulate.machine(20, RATE, 2, seed=22)),
                    ("bearing", simulate.machine(10, RATE, 2, seed=28, defect_hz=107.0))):
        out[name] = folder / (name + ".wav")
        scipy.io.wavfile.write(out[name], RATE, x)
    out["full"], out["pca"] = folder / "full.vwm", folder / "pca.vwm"
    # --zoom off: these tests are about PCA (8 kHz would get a zoom block, tests/test_zoom.py)
    vibrawatch("fit", out["normal"], "-o", out["full"], "--zoom", "off")
    out["fit"] = vibrawatch("fit", out["normal"], "-o", out["pca"], "--pca", K, "--zoom",
                            "off").stdout
    return out


def above(model, wav, tmp_path):
    table = tmp_path / "s.csv"
    vibrawatch("score", model, wav, "--csv", table)
    return np.array([int(r["above"]) for r in csv.DictReader(open(table))])


def test_fit_pca_makes_a_smaller_model_that_still_catches_a_fault(wavs, tmp_path):
    full, pca = modelfile.read(wavs["full"]), modelfile.read(wavs["pca"])
    assert (pca.components, full.components, pca.n_features) == (K, 0, 32)
    assert wavs["pca"].stat().st_size < 0.5 * wavs["full"].stat().st_size
    assert "PCA: %d of 32 components kept" % K in wavs["fit"]
    info = vibrawatch("info", wavs["pca"]).stdout
    assert "format v3" in info and "pca          %d components" % K in info
    assert "%d bytes on the board (%d without PCA)" % (pca.array_bytes, full.array_bytes) in info
    assert "format v3" in vibrawatch("info", wavs["full"]).stdout
    assert above(wavs["pca"], wavs["bearing"], tmp_path).mean() >= 0.99
    assert above(wavs["pca"], wavs["later"], tmp_path).mean() <= 0.01
    assert "1 and" in refused("fit", wavs["normal"], "-o", tmp_path / "m.vwm", "--pca", 32)


def test_the_residual_term_catches_a_fault_the_components_do_not_span(wavs, micropython):
    model = modelfile.read(wavs["pca"])
    a = model.a.astype(np.float64)
    # A direction with A v = 0: projected onto the K components it is nothing at all, so a
    # plain PCA projection would score it 0 however large it grows.
    rng = np.random.default_rng(5)
    r = rng.normal(size=model.n_features)
    v = r - a.T @ np.linalg.solve(a @ a.T, a @ r)
    assert np.abs(a @ v).max() < 1e-9 * np.abs(a @ r).max()
    v *= np.sqrt(4 * model.threshold / np.sum(model.w * v * v))  # 4x the threshold
    f = (model.mu + v)[None, :]
    assert model.mahalanobis(f)[0] == pytest.approx(4 * model.threshold, rel=1e-4)
    assert board_scores(micropython, wavs["pca"], f)[0] == pytest.approx(
        4 * model.threshold, rel=1e-3)


def test_fit_suggests_pca_when_the_model_is_too_big_for_a_board(tmp_path):
    # 8 channels x 23 bands: d = 184, a 67 KB full model (more than the 64 KB budget).
    x = simulate.machine(8, RATE, 8, seed=31)
    wav = tmp_path / "eight.wav"
    scipy.io.wavfile.write(wav, RATE, x)
    args = ("--window", "256", "--hop", "128", "--bands", "23", "--zoom", "off")
    out = vibrawatch("fit", wav, "-o", tmp_path / "big.vwm", *args).stdout
    found = re.search(r"model arrays take ([\d.]+) KB, more than the 64 KB .* --pca (\d+) ", out)
    assert found, out
    assert modelfile.read(tmp_path / "big.vwm").components == 0  # written as asked
    assert float(found.group(1)) > 64
    k = int(found.group(2))
    share = float(re.search(r"%d components explain (\d+)%% of" % k, out).group(1))
    # the rule: the fewest components explaining 95 %, unless one more would not fit
    one_more = 2 * 24 + 4 * modelfile.array_floats(184, k + 1)
    assert share >= 95 or one_more > fitting.BOARD_ARRAY_BUDGET, (k, share)
    small_out = vibrawatch("fit", wav, "-o", tmp_path / "small.vwm", *args, "--pca", k).stdout
    small = modelfile.read(tmp_path / "small.vwm")
    assert small.components == k and small.array_bytes <= fitting.BOARD_ARRAY_BUDGET
    kept = float(re.search(r"PCA: %d of 184 components kept \(([\d.]+)%%" % k,
                           small_out).group(1))
    assert abs(kept - share) <= 1.0  # the reduction the suggestion described
    # a model within the budget says nothing about its size
    assert "KB" not in vibrawatch("fit", wavs_normal(tmp_path), "-o", tmp_path / "m.vwm").stdout


def wavs_normal(tmp_path):
    path = tmp_path / "two.wav"
    scipy.io.wavfile.write(path, RATE, simulate.machine(10, RATE, 2, seed=32))
    return path
