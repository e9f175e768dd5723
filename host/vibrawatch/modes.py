"""Operating modes: one model with K Gaussian components (docs/features.md, "Score").

A machine that runs at several speeds or loads has its normal windows in separate clusters.
One Gaussian over all of them is wide along the directions that separate the clusters, so a
fault that moves a window off its own cluster, but not beyond the spread of all of them, goes
unseen. K components, one per mode, each with its own mean and precision (from the fit's
estimator, on the windows of that mode), score a window by its distance to the nearest one.

How the windows are split into modes (``FitSettings.modes``):

- ``"auto"`` (the default): K = 1 unless the data clearly hold separate modes. A Gaussian
  mixture (scikit-learn) on the leading principal components of the standardised features,
  K = 1 … 4 chosen by BIC; then K is lowered until every two components' means are at least
  MIN_SEPARATION standard deviations apart (the Mahalanobis distance under the pooled
  within-mode covariance), and further apart than the radius sqrt(T) of the threshold one
  Gaussian over all the windows would have (fit passes it: separation_needed), and every
  component has enough windows for its covariance. A unimodal cloud split in two gives means
  about 2 to 3 standard deviations apart; two shaft speeds give tens; two loads at one speed
  can give 6 to 11, where on short recordings the radius (8 for 18 features and 76 windows)
  decides.
- an integer K: a K-component mixture, as asked.
- ``"per-recording"``: each normal recording is one mode (K = the number of recordings).

    choice = choose(train, groups, names, "auto", min_windows)   # ModeChoice: k, how, note
    est = ModeMixture(choice.k, choice.how, fit_one).fit(rows, groups, choice.labels)
    est.mahalanobis(rows)     # the smallest distance over the components
"""

from dataclasses import dataclass

import numpy as np

from .errors import VibrawatchError

MAX_MODES = 4  # what a board scores (model-format.md, "Version 3")
MIN_SEPARATION = 5.0  # standard deviations between two modes' means for "clearly separate"
MIXTURE_DIMS = 8  # leading principal components of the standardised features the mixture sees
MIXTURE_ROWS = 20000  # windows the mixture is fitted on at most (evenly spread in time)
MIN_SHARE = 0.05  # "auto": every mode holds at least this share of the windows
AUTO, PER_RECORDING = "auto", "per-recording"


class ModesError(VibrawatchError):
    pass


def parse(text):
    """``--modes`` as given: "auto", "per-recording" or K in 1..MAX_MODES."""
    text = str(text).strip().lower()
    if text in (AUTO, PER_RECORDING):
        return text
    try:
        k = int(text)
    except ValueError:
        k = 0
    if not 1 <= k <= MAX_MODES:
        raise ModesError("--modes %s: use auto, per-recording or a number of modes from 1 to %d"
                         % (text, MAX_MODES))
    return k


@dataclass
class ModeChoice:
    k: int
    how: str  # "mixture" or "per-recording"
    note: str  # the fit report's line: what was chosen and why
    labels: np.ndarray | None = None  # the training windows' modes


class _Space:
    """Standardised features projected on their leading principal components."""

    def __init__(self, rows):
        rows = np.asarray(rows, np.float64)
        self.mean = rows.mean(axis=0)
        self.scale = rows.std(axis=0)
        self.scale[self.scale <= 1e-9 * max(1.0, self.scale.max())] = 1.0
        z = (rows - self.mean) / self.scale
        dims = min(MIXTURE_DIMS, z.shape[1], max(1, z.shape[0] - 1))
        sample = z[_spread(len(z))]
        _, vectors = np.linalg.eigh(sample.T @ sample)  # ascending eigenvalues
        self.basis = vectors[:, ::-1][:, :dims]

    def __call__(self, rows):
        return ((np.asarray(rows, np.float64) - self.mean) / self.scale) @ self.basis


def _spread(n):
    """Indices of at most MIXTURE_ROWS windows evenly spread over n."""
    if n <= MIXTURE_ROWS:
        return slice(None)
    return np.linspace(0, n - 1, MIXTURE_ROWS).astype(int)


def _mixture(k):
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(n_components=k, covariance_type="full", n_init=2, reg_covar=1e-4,
                           random_state=0)


def _one_thread():
    # The mixtures' matrices are small (MIXTURE_DIMS wide): BLAS threads only contend, which
    # on a busy machine makes them a hundred times slower. (threadpoolctl: scikit-learn's.)
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    return threadpool_limits(1)


def mixture_labels(rows, k):
    """Each window's mode from a K-component Gaussian mixture (0 … K-1, numbered by size,
    largest first, so that the numbering does not depend on the mixture's start)."""
    if k == 1:
        return np.zeros(len(rows), int)
    with _one_thread():
        z = _Space(rows)(rows)
        gm = _mixture(k).fit(z[_spread(len(z))])
        return _by_size(gm.predict(z), k)


def _by_size(labels, k):
    order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")
    rank = np.empty(k, int)
    rank[order] = np.arange(k)
    return rank[labels]


def separation(rows, labels, k):
    """The smallest distance, in standard deviations, between two modes' means under the
    pooled within-mode covariance (Ledoit-Wolf) of the standardised features; inf for K = 1."""
    if k < 2:
        return float("inf")
    from sklearn.covariance import LedoitWolf

    rows = np.asarray(rows, np.float64)
    scale = rows.std(axis=0)
    scale[scale <= 0] = 1.0
    z = rows / scale
    means = np.array([z[labels == j].mean(axis=0) for j in range(k)])
    within = LedoitWolf(assume_centered=True).fit(z - means[labels])
    best = float("inf")
    for i in range(k):
        for j in range(i + 1, k):
            dv = means[i] - means[j]
            best = min(best, float(np.sqrt(dv @ within.precision_ @ dv)))
    return best


def choose(rows, groups, names, setting, min_windows, min_separation=MIN_SEPARATION):
    """The modes of the training windows ``rows`` (groups: each window's recording index,
    names: the recordings' names); min_windows: fewest windows a mode's covariance needs;
    min_separation: "auto" splits only modes at least this many standard deviations apart
    (fit: the radius of one component's threshold, see separation_needed)."""
    n = len(rows)
    if setting == PER_RECORDING:
        k = len(names)
        if k > MAX_MODES:
            raise ModesError("--modes per-recording: %d recordings, a board scores at most %d "
                             "modes; merge recordings of the same mode or use --modes auto"
                             % (k, MAX_MODES))
        sizes = np.bincount(groups, minlength=k)
        for name, size in zip(names, sizes):
            if size < min_windows:
                raise ModesError("--modes per-recording: %s gives %d training windows, its "
                                 "mode's covariance needs at least %d: record longer or use "
                                 "--modes auto" % (name, size, min_windows))
        note = "modes: %d, one per recording (%s)" % (k, ", ".join(
            "%s %d windows" % (name, size) for name, size in zip(names, sizes)))
        if k > 1:
            sep = separation(rows, groups, k)
            note += "; the modes' means are %.1f standard deviations apart at least" % sep
            if sep < MIN_SEPARATION:
                note += (" (less than %g: some recordings look like one mode; each component "
                         "then has fewer windows than it could, --modes auto may do better)"
                         % MIN_SEPARATION)
        return ModeChoice(k, PER_RECORDING, note, np.asarray(groups))
    if setting != AUTO:
        k = int(setting)
        labels = mixture_labels(rows, k)
        sizes = np.bincount(labels, minlength=k)
        if sizes.min() < min_windows:
            raise ModesError("--modes %d: the smallest mode has %d training windows, its "
                             "covariance needs at least %d: use fewer modes or more normal data"
                             % (k, sizes.min(), min_windows))
        note = "modes: %d as asked (--modes %d)" % (k, k)
        if k > 1:
            note += ": %s windows, means %.1f standard deviations apart at least" % (
                " and ".join(map(str, sizes)), separation(rows, labels, k))
        return ModeChoice(k, "mixture", note, labels)
    with _one_thread():
        return _auto(rows, min_windows, n, max(MIN_SEPARATION, min_separation))


def separation_needed(threshold):
    """Standard deviations two modes' means must be apart for "auto" to split them, given
    the threshold one component over all the windows would have: at least MIN_SEPARATION,
    and at least that threshold's radius sqrt(T). Modes nearer than the radius are one state
    at the scale the detector resolves (a component of one would not alarm on the other's
    mean); splitting them would only halve the windows each component is estimated from,
    and on short recordings the Gaussian bound grows fast as those windows shrink."""
    return max(MIN_SEPARATION, float(np.sqrt(threshold)))


def _auto(rows, min_windows, n, min_separation=MIN_SEPARATION):
    space = _Space(rows)
    z = space(rows)
    sample = z[_spread(len(z))]
    floor = max(min_windows, int(np.ceil(MIN_SHARE * n)))
    bics = {}
    for k in range(1, MAX_MODES + 1):
        if k > 1 and k * floor > n:
            break
        bics[k] = _mixture(k).fit(sample).bic(sample)
    best = min(bics, key=bics.get)
    why = ""
    for k in range(best, 1, -1):
        labels = _by_size(_mixture(k).fit(sample).predict(z), k)
        sizes = np.bincount(labels, minlength=k)
        sep = separation(rows, labels, k)
        if sizes.min() >= floor and sep >= min_separation:
            return ModeChoice(k, "mixture", (
                "modes: %d operating modes found (a Gaussian mixture on the standardised "
                "features, K by BIC): %s windows, means %.1f standard deviations apart at "
                "least; the score is the distance to the nearest (give --modes 1 for one "
                "Gaussian)" % (k, " and ".join(map(str, sizes)), sep)), labels)
        if not why:
            why = (" (%d modes split the windows %s, means only %.1f standard deviations "
                   "apart; %.1f needed%s)" % (
                       k, "/".join(map(str, sizes)), sep, min_separation,
                       ", the radius of one Gaussian's threshold"
                       if min_separation > MIN_SEPARATION else "")
                   if sizes.min() >= floor else
                   " (%d modes would leave one with %d windows, fewer than the %d its "
                   "covariance needs)" % (k, sizes.min(), floor))
    if best == 1:
        why = " (BIC prefers one Gaussian)"
    return ModeChoice(1, "mixture", "modes: 1, the normal data show no separate operating "
                      "modes%s; give --modes K or --modes per-recording to override" % why,
                      np.zeros(n, int))


class ModeMixture:
    """K components fitted on their own windows: fit_one(rows) -> an estimator with
    ``mahalanobis`` (a scikit-learn covariance or pca.PCAPrecision)."""

    def __init__(self, k, how, fit_one):
        self.k = k
        self.how = how
        self.fit_one = fit_one
        self.parts = []

    def fit(self, rows, groups=None, labels=None):
        """Fit on ``rows``; the modes from ``labels``, else per recording (``groups``) or a
        fresh mixture (as cross-validation does in every fold)."""
        if labels is None:
            labels = groups if self.how == PER_RECORDING else mixture_labels(rows, self.k)
        self.parts = [self.fit_one(rows[labels == j]) for j in range(self.k)]
        return self

    def distances(self, rows):
        return np.stack([p.mahalanobis(rows) for p in self.parts], axis=1)

    def mahalanobis(self, rows):
        return self.distances(rows).min(axis=1)
