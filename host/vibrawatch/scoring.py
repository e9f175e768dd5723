"""Scoring a recording window by window as the board does, NaN and infinity included.

A window that holds a NaN or infinite sample is not scored and is flagged (docs/protocol.md):
its score is NaN, it is not above the threshold, and its flags carry FLAG_NONFINITE; the same
for a score that overflows. The board's backends print such a window as `nan,0`.

    scores, above, flags = score_recording(model, rec, cfg)
"""

import numpy as np

from . import features as F
from .protocol import FLAG_ABOVE, FLAG_NONFINITE


def nonfinite_windows(rec, cfg):
    """Boolean per window (as ``F.extract`` returns them): does it, or its zoom history,
    hold a NaN or infinite sample?"""
    count = cfg.n_windows(rec.frames)
    bad_frames = ~np.isfinite(np.asarray(rec.samples)).all(axis=1)
    if not bad_frames.any():
        return np.zeros(count, bool)
    cum = np.concatenate([[0], np.cumsum(bad_frames)])
    ends = (np.arange(count) + cfg.first_window) * cfg.hop + cfg.window
    return cum[ends] > cum[np.maximum(ends - cfg.span, 0)]


def score_recording(model, rec, cfg):
    """(scores, above, flags) per window; NaN scores for windows that could not be scored."""
    bad = nonfinite_windows(rec, cfg)
    samples = rec.samples
    if bad.any():  # the other windows must not see the bad samples' neighbours as NaN either
        samples = np.where(np.isfinite(samples), samples, 0)
    scores = model.mahalanobis(F.extract(samples, cfg, rec.scale))
    scores[bad | ~np.isfinite(scores)] = np.nan
    above = scores > model.threshold
    flags = np.where(np.isnan(scores), FLAG_NONFINITE, 0) | np.where(above, FLAG_ABOVE, 0)
    return scores, above, flags
