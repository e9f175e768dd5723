"""A rotating-machine vibration simulator with known answers, for tests and benchmarks.

A shaft turning at ``shaft_hz`` gives harmonics of the shaft frequency (with a little speed
wander), a bearing defect gives a train of impacts at its defect frequency, each ringing a
structural resonance, and the sensor adds broadband noise. Every channel sees the same machine
through its own gains plus its own noise.

    x = machine(seconds=10, rate=8000, channels=2, seed=1)                    # normal
    y = machine(seconds=10, rate=8000, channels=2, seed=2, defect_hz=107.0)   # outer race
    z = double_band(x, 8000, 1000, 2000, seed=3)   # twice the energy in 1-2 kHz
"""

import numpy as np
import scipy.signal


def machine(seconds, rate, channels=1, shaft_hz=30.0, harmonics=(1.0, 0.4, 0.2),
            noise=0.05, defect_hz=None, defect_g=0.5, resonance_hz=None, damping=0.02,
            imbalance=1.0, wander=0.002, unit=0, seed=0):
    """(frames, channels) float32 samples in g.

    harmonics: amplitudes (g) of 1x, 2x, 3x ... shaft; ``imbalance`` scales the 1x one.
    defect_hz: impacts per second of a bearing defect (None: a healthy bearing); each impact
    of ``defect_g`` rings a resonance at ``resonance_hz`` (default rate / 5) with relative
    ``damping``. wander: relative standard deviation of the shaft speed.
    unit: which machine (sensor gains); seed: which run of it (phases, noise, impacts).
    """
    gains = 1.0 + 0.3 * np.random.default_rng(10_000 + unit).standard_normal((channels, 2))
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    # Shaft speed wanders slowly about its nominal value (an AR(1) process, time constant 1 s,
    # relative standard deviation ``wander``), as a motor's speed does under small load changes.
    a = np.exp(-1.0 / rate)
    ou = scipy.signal.lfilter([np.sqrt(1 - a * a)], [1, -a], rng.standard_normal(n))
    speed = shaft_hz * (1.0 + wander * ou)
    phase = 2 * np.pi * np.cumsum(speed) / rate
    shaft = np.zeros((n, 2))
    for h, amp in enumerate(harmonics, start=1):
        a = amp * (imbalance if h == 1 else 1.0)
        p0 = rng.uniform(0, 2 * np.pi)
        shaft[:, 0] += a * np.sin(h * phase + p0)
        shaft[:, 1] += a * np.cos(h * phase + p0)
    x = shaft @ gains.T / len(harmonics)
    if defect_hz:
        res = resonance_hz or rate / 5.0
        ring_len = int(min(n, 8 * rate / (2 * np.pi * damping * res)))
        tr = np.arange(ring_len) / rate
        ring = np.exp(-2 * np.pi * damping * res * tr) * np.sin(2 * np.pi * res * tr)
        # impacts at the defect rate with 1 % timing jitter (ball slip)
        times = np.cumsum(rng.normal(1.0 / defect_hz, 0.01 / defect_hz,
                                     size=int(seconds * defect_hz) + 2))
        pulses = np.zeros(n)
        idx = (times[times < seconds] * rate).astype(int)
        pulses[idx] = defect_g * (1.0 + 0.2 * rng.standard_normal(idx.size))
        impacts = np.convolve(pulses, ring)[:n]
        x = x + impacts[:, None] * (0.5 + rng.random(channels))[None, :]
    x = x + noise * rng.standard_normal((n, channels))
    return x.astype(np.float32)


def double_band(x, rate, lo_hz, hi_hz, seed=0):
    """``x`` plus an independent copy of its content between lo_hz and hi_hz (same spectrum,
    random phases): the expected energy in that band doubles, nothing else changes."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float64)
    spec = np.fft.rfft(x, axis=0)
    freqs = np.fft.rfftfreq(x.shape[0], 1.0 / rate)
    band = (freqs >= lo_hz) & (freqs < hi_hz)
    extra = np.zeros_like(spec)
    phases = np.exp(2j * np.pi * rng.random((int(band.sum()), x.shape[1])))
    extra[band] = np.abs(spec[band]) * phases
    return (x + np.fft.irfft(extra, n=x.shape[0], axis=0)).astype(np.float32)
