"""Test signals with known character, shared by the host and device agreement tests."""

import numpy as np

KINDS = ("random", "silence", "dc", "sine_on_bin", "sine_between_bins", "clipped")


def make(kind, frames, channels, window, seed=0):
    """(frames, channels) float32 in g-like units; sines are placed relative to ``window``."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    c = np.arange(channels)[None, :]
    if kind == "random":
        x = rng.normal(scale=0.5 + 0.25 * c, size=(frames, channels))
    elif kind == "silence":
        x = np.zeros((frames, channels))
    elif kind == "dc":
        x = np.ones((frames, channels)) * (0.3 + c)  # e.g. gravity on one axis
    elif kind == "sine_on_bin":
        k = 3 + 2 * c
        x = 1.5 * np.sin(2 * np.pi * k * t / window)
    elif kind == "sine_between_bins":
        k = 3.5 + 2.25 * c
        x = 1.5 * np.sin(2 * np.pi * k * t / window) + 0.01 * rng.normal(size=(frames, channels))
    elif kind == "clipped":  # a +-16 g sensor driven far past full scale
        x = np.clip(40.0 * rng.normal(size=(frames, channels)), -16.0, 16.0)
    else:
        raise ValueError(kind)
    return x.astype(np.float32)


def random_factor(d, seed=0):
    """A random, well-conditioned precision's mean and packed Cholesky factor (float32)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    precision = a @ a.T + np.eye(d)
    lower = np.linalg.cholesky(precision)
    packed = np.concatenate([lower[j:, j] for j in range(d)]).astype(np.float32)
    mu = rng.normal(loc=-4.0, size=d).astype(np.float32)
    return mu, packed
