"""The host's numpy features and scores against the reference (docs/features.md tolerances)."""

import numpy as np
import pytest

import signals
from vibrawatch import features as F
from vibrawatch.modelfile import Mode
from vibrawatch import reference as R

FEATURE_TOL = 2e-3  # absolute, in log units (docs/features.md)
SCORE_RTOL = 1e-3  # relative to max(score, d)

CASES = [  # (kind, N, channels, stats); big N with few channels: the reference DFT is O(N^2)
    *[(kind, 64, 3, 7) for kind in signals.KINDS],
    *[(kind, 256, 2, 0) for kind in signals.KINDS],
    ("random", 64, 8, 7),
    ("clipped", 128, 8, 1),
    ("random", 1024, 1, 7),
    ("sine_between_bins", 2048, 1, 0),
]


@pytest.mark.parametrize("kind,n,channels,stats", CASES)
def test_host_features_and_scores_match_the_reference(kind, n, channels, stats):
    hop = n // 2
    x = signals.make(kind, frames=n + 2 * hop, channels=channels, window=n, seed=n)
    edges = F.default_band_edges(n, min(12, n // 2 - 1))
    eps = 1e-6 * max(float(np.mean(x.astype(float) ** 2)), 1e-3)
    cfg = F.FeatureConfig(n, hop, 1000.0, channels, edges, float(np.float32(eps)), stats)
    host = F.extract(x, cfg)
    assert host.shape == (3, cfg.n_features) and host.dtype == np.float32
    mu, packed = signals.random_factor(cfg.n_features, seed=n)
    host_scores = Mode(mu, packed).distances(host)  # the host's scorer
    for w in range(3):
        window = x[w * hop : w * hop + n].astype(np.float64)
        ref = R.features([window[:, c].tolist() for c in range(channels)],
                         edges.tolist(), cfg.epsilon, stats)
        np.testing.assert_allclose(host[w], ref, rtol=0, atol=FEATURE_TOL)
        ref_score = R.score(ref, mu.tolist(), packed.tolist())
        assert abs(host_scores[w] - ref_score) <= SCORE_RTOL * max(ref_score, cfg.n_features)


def test_int16_recordings_are_scaled_to_full_scale_one():
    rng = np.random.default_rng(5)
    raw = rng.integers(-20000, 20000, size=(512, 2)).astype(np.int16)
    cfg = F.FeatureConfig(256, 128, 1000.0, 2, F.default_band_edges(256, 8), 1e-6, 7)
    as_int = F.extract(raw, cfg, scale=1 / 32768)
    as_float = F.extract(raw.astype(np.float32) / 32768, cfg)
    np.testing.assert_array_equal(as_int, as_float)


def test_chunking_does_not_change_the_features():
    x = signals.make("random", 5000, 3, 256)
    cfg = F.FeatureConfig(256, 100, 1000.0, 3, F.default_band_edges(256, 10), 1e-6, 7)
    whole = F.extract(x, cfg)
    assert whole.shape[0] == cfg.n_windows(5000) == (5000 - 256) // 100 + 1
    np.testing.assert_array_equal(F.extract(x, cfg, chunk_windows=7), whole)


def test_documented_band_layout_example():
    assert F.default_band_edges(256, 8).tolist() == [1, 2, 4, 7, 13, 23, 41, 72, 128]
    assert F.default_band_edges(256, 8, "linear").tolist() == [1, 16, 32, 48, 64, 80, 96, 112,
                                                                128]


@pytest.mark.parametrize("n", [16, 64, 256, 1024, 4096])
@pytest.mark.parametrize("bands", [1, 7, 16, 40])
@pytest.mark.parametrize("layout", ["log", "linear"])
def test_band_edges_cover_bins_one_to_half_n_without_empty_bands(n, bands, layout):
    if bands > n // 2 - 1:
        with pytest.raises(F.VibrawatchError, match="bands do not fit"):
            F.default_band_edges(n, bands, layout)
        return
    edges = F.default_band_edges(n, bands, layout).astype(int)
    assert edges[0] == 1 and edges[-1] == n // 2 and len(edges) == bands + 1
    assert np.all(np.diff(edges) >= 1)
    if layout == "log" and bands > 2:
        widths = np.diff(edges)
        assert widths[-1] >= widths[0]  # widening with frequency


def test_window_must_be_a_power_of_two():
    with pytest.raises(F.VibrawatchError, match="power of two"):
        F.default_band_edges(1000, 8)


ZOOM_CASES = [  # (kind, N, H, channels, R, N_z): the reference DFT is O(N_z^2)
    *[(kind, 64, 32, 2, 4, 64) for kind in signals.KINDS],
    ("random", 256, 128, 3, 16, 32),  # zoom history shorter than the window
    ("sine_between_bins", 128, 64, 1, 8, 256),
    ("clipped", 64, 16, 8, 2, 64),
]


@pytest.mark.parametrize("kind,n,hop,channels,r,nz", ZOOM_CASES)
def test_host_zoom_block_matches_the_reference(kind, n, hop, channels, r, nz):
    first = R.first_window(n, hop, r, nz)
    frames = first * hop + n + 3 * hop + hop // 2  # 4 windows with zoom, and a partial hop
    x = signals.make(kind, frames=frames, channels=channels, window=r * nz, seed=nz + r)
    zedges = F.default_band_edges(nz, min(6, nz // 2 - 1), "linear")
    eps = float(np.float32(1e-6 * max(float(np.mean(x.astype(float) ** 2)), 1e-3)))
    cfg = F.FeatureConfig(n, hop, 1000.0, channels, F.default_band_edges(n, 4), eps, 1,
                          zoom=r, zoom_window=nz, zoom_edges=zedges)
    assert cfg.first_window == first and cfg.n_features == channels * (4 + 1 + 6)
    host = F.extract(x, cfg)
    assert host.shape == (4, cfg.n_features) == (cfg.n_windows(frames), cfg.n_features)
    np.testing.assert_array_equal(F.extract(x, cfg, chunk_windows=3), host)
    main = channels * 5
    for row in range(4):
        i = first + row
        end = i * hop + n
        assert end >= r * nz and cfg.window_start(row) == i * hop
        window = x[i * hop : end].astype(np.float64)
        history = x[end - r * nz : end].astype(np.float64)
        ref = R.features([window[:, c].tolist() for c in range(channels)],
                         cfg.edges.tolist(), eps, 1)
        ref += R.zoom_features([history[:, c].tolist() for c in range(channels)], r,
                               zedges.tolist(), eps)
        np.testing.assert_allclose(host[row], ref, rtol=0, atol=FEATURE_TOL)
        if row == 0 and first:  # one window earlier the history would not be complete
            assert (i - 1) * hop + n < r * nz


def test_a_sine_between_main_bins_lands_in_one_zoom_band():
    # 10 Hz at 1024 Hz with N = 64 (16 Hz bins) sits in the first main bin; the zoom block
    # (R = 8, N_z = 128: 1 Hz bins) puts it in the band that holds 10 Hz.
    rate, n, r, nz = 1024.0, 64, 8, 128
    t = np.arange(8192) / rate
    x = (np.sin(2 * np.pi * 10.0 * t) + 0.01 * np.random.default_rng(0).normal(size=t.size))
    zedges = np.array([1, 6, 9, 12, 16, 24], np.uint16)  # 1-6, 6-9, 9-12 (10 Hz), 12-16 ...
    cfg = F.FeatureConfig(n, 32, rate, 1, F.default_band_edges(n, 4), 1e-6, 0, zoom=r,
                          zoom_window=nz, zoom_edges=zedges)
    feats = F.extract(x[:, None].astype(np.float32), cfg)
    zoom = feats[:, 4:]
    assert np.all(np.argmax(zoom, axis=1) == 2)
    assert cfg.feature_names()[4:] == ["ch0:zoom 1-6Hz", "ch0:zoom 6-9Hz", "ch0:zoom 9-12Hz",
                                       "ch0:zoom 12-16Hz", "ch0:zoom 16-24Hz"]


def test_zoom_settings_the_contract_refuses():
    with pytest.raises(F.VibrawatchError, match="divide both"):
        F.check_zoom(1024, 500, 16, 256)
    with pytest.raises(F.VibrawatchError, match="power of two"):
        F.check_zoom(1024, 512, 16, 100)
    with pytest.raises(F.VibrawatchError, match="strictly increasing"):
        F.check_zoom(1024, 512, 16, 256, [1, 1, 4])
    F.check_zoom(1024, 512, 16, 256, [1, 4, 129])
