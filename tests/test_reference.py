"""The reference against the mathematics it claims to implement (docs/features.md)."""

import math

import numpy as np
import pytest

from vibrawatch import reference as R


def dft_power_numpy(x):
    """docs/features.md steps 1-3 written independently, in float64 numpy."""
    n = len(x)
    d = np.asarray(x, float) - np.mean(x)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    spec = np.fft.rfft(d * w)
    return np.abs(spec) ** 2 * 16.0 / (3.0 * n * n)


@pytest.mark.parametrize("n", [16, 64, 128])
def test_power_spectrum_matches_an_independent_fft(n):
    x = np.random.default_rng(n).normal(size=n)
    ref = np.array(R.power_spectrum(x.tolist()))
    np.testing.assert_allclose(ref, dft_power_numpy(x), rtol=1e-9, atol=1e-12)


def test_sine_on_a_bin_puts_a_third_of_its_square_amplitude_on_that_bin():
    n, k, amp = 64, 5, 2.0
    x = [amp * math.cos(2 * math.pi * k * i / n) for i in range(n)]
    p = R.power_spectrum(x)
    assert p[k] == pytest.approx(amp * amp / 3, rel=1e-9)
    assert p[k - 1] == pytest.approx(amp * amp / 12, rel=1e-9)
    assert p[k + 1] == pytest.approx(amp * amp / 12, rel=1e-9)
    # The rest is empty, and the total is the sine's mean square.
    assert sum(p) == pytest.approx(amp * amp / 2, rel=1e-9)


def test_broadband_power_sums_to_the_mean_square_whatever_the_window_length():
    rng = np.random.default_rng(1)
    totals = []
    for n in (64, 256):
        x = rng.normal(scale=0.5, size=(200, n))
        totals.append(np.mean([sum(R.power_spectrum(r.tolist())[1 : n // 2]) for r in x[:20]]))
    for t in totals:
        assert t == pytest.approx(0.25, rel=0.1)


@pytest.mark.parametrize("signal", ["silence", "dc"])
def test_silence_and_dc_give_log_epsilon_in_every_band(signal):
    n, eps = 64, 1e-6
    x = [0.0] * n if signal == "silence" else [0.7] * n
    f = R.features([x, x], edges=[1, 4, 16, 32], eps=eps, stats=R.STAT_KURTOSIS | R.STAT_CREST)
    # DC removal in float64 leaves ~1e-16, far under eps.
    for value in f[0:3] + f[5:8]:
        assert value == pytest.approx(math.log(eps), abs=1e-9)
    assert f[3:5] == pytest.approx([0.0, 0.0], abs=1e-9)  # kurtosis and crest of silence


def test_statistics_of_gaussian_noise():
    x = np.random.default_rng(2).normal(scale=2.0, size=4096).tolist()
    rms, kurt, crest = R.time_stats(x, 1e-9, 7)
    assert rms == pytest.approx(math.log(2.0), abs=0.03)
    assert kurt == pytest.approx(math.log(3.0), abs=0.1)
    assert math.exp(crest) > 1.0 and math.exp(crest) < 5.0


def test_band_energies_sum_their_half_open_ranges():
    assert R.band_energies([1.0, 2.0, 4.0, 8.0, 16.0], [0, 1, 3, 5]) == [1.0, 6.0, 24.0]


def test_score_is_the_squared_mahalanobis_distance():
    rng = np.random.default_rng(3)
    d = 7
    a = rng.normal(size=(d, d))
    precision = a @ a.T + d * np.eye(d)
    lower = np.linalg.cholesky(precision)
    packed = [lower[i, j] for j in range(d) for i in range(j, d)]
    mu = rng.normal(size=d)
    f = rng.normal(size=d)
    expected = (f - mu) @ precision @ (f - mu)
    assert R.score(f.tolist(), mu.tolist(), packed) == pytest.approx(expected, rel=1e-12)
    for j in range(d):
        for i in range(j, d):
            assert packed[R.packed_index(d, i, j)] == lower[i, j]
