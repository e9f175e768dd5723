"""The PCA reduction: a precision that is diagonal plus low rank (probabilistic PCA).

When features outnumber what a board can hold (the packed Cholesky factor grows as d^2/2),
the model keeps K principal components of the standardised features and one noise variance
for everything else (Tipping & Bishop's probabilistic PCA). Its precision is

    P = diag(w) + A^T diag(g) A,   w_i = 1/(sigma^2 s_i^2),  A_ki = u_ki / s_i,
                                   g_k = 1/lambda_k - 1/sigma^2

with s_i the features' standard deviations, (u_k, lambda_k) the top K eigenpairs of the
standardised features' covariance and sigma^2 the mean of the other eigenvalues. The score
v^T P v (v = f - mu) is  sum_i w_i v_i^2 + sum_k g_k (A_k . v)^2: 8d + 4K(d + 1) bytes and
d(K + 1) multiply-adds instead of 2d(d + 1) bytes and d^2/2. The first (residual) term keeps
the score full rank: a fault along a direction the K components do not span still scores
1/sigma^2 per unit of standardised variance, where a plain projection onto them would miss it.

    est = PCAPrecision(10, "ledoitwolf").fit(train)     # train: (windows, d)
    est.mahalanobis(rows); est.w_, est.a_, est.g_, est.location_
"""

import numpy as np

from .errors import VibrawatchError
from .modelfile import Mode

# A feature that (nearly) never varies, such as a silent band held at ln(epsilon), has no
# spread to standardise by; this floor (log units) keeps its weight finite.
MIN_SCALE = 1e-3


class PCAPrecision:
    """Probabilistic PCA on standardised features, covariance from a scikit-learn estimator.

    estimator: a name of fitting.ESTIMATORS (ledoitwolf, mcd, empirical), used on the
    standardised features exactly as the full model uses it on the raw ones.
    """

    def __init__(self, n_components, estimator="ledoitwolf"):
        self.n_components = n_components
        self.estimator = estimator

    def fit(self, X):
        X = np.asarray(X, np.float64)
        k = self.n_components
        if not 1 <= k < X.shape[1]:
            raise VibrawatchError("%d PCA components for %d features: need 1 <= K < d"
                                  % (k, X.shape[1]))
        center, scale, est, lam, u = _spectrum(X, self.estimator)
        sigma2 = float(lam[k:].mean())
        if not sigma2 > 0:
            raise VibrawatchError("the %s covariance leaves no variance outside %d components "
                                  "(features that never vary?): use fewer --pca components or "
                                  "--estimator ledoitwolf" % (self.estimator, k))
        self.location_ = center + scale * est.location_
        self.scale_ = scale
        self.components_ = u[:, :k].T  # (K, d), in standardised units
        self.explained_variance_ = lam[:k]
        self.explained_variance_ratio_ = lam[:k] / lam.sum()
        self.noise_variance_ = sigma2
        self.w_ = 1.0 / (sigma2 * scale**2)
        self.a_ = self.components_ / scale
        self.g_ = 1.0 / lam[:k] - 1.0 / sigma2
        return self

    @property
    def precision_(self):
        return np.diag(self.w_) + (self.a_.T * self.g_) @ self.a_

    def mahalanobis(self, X):
        """Squared distances v^T P v of the rows of X, v = x - location_ (the model file's
        scorer, modelfile.Mode.distances, on these float64 arrays)."""
        return Mode(self.location_, None, self.w_, self.a_, self.g_).distances(X)


def _spectrum(X, estimator):
    # Standardise, estimate the covariance, eigendecompose it (largest eigenvalue first).
    from .fitting import ESTIMATORS  # fitting imports this module

    center = X.mean(axis=0)
    scale = np.maximum(X.std(axis=0), MIN_SCALE)
    est = ESTIMATORS[estimator]().fit((X - center) / scale)
    lam, u = np.linalg.eigh(est.covariance_)
    return center, scale, est, lam[::-1], u[:, ::-1]


def explained(X, estimator="ledoitwolf"):
    """Cumulative share of the standardised features' variance that the first 1, 2, ... d
    components explain, with the covariance the fit would use."""
    lam = _spectrum(np.asarray(X, np.float64), estimator)[3]
    return np.cumsum(lam) / lam.sum()
