"""``strata.NMF``: beta-NMF with scikit-learn's ``sklearn.decomposition.NMF`` API."""

import numbers
import warnings

import numpy as np

from . import _native
from ._base import ConvergenceWarning, Params, as_float_array, check_fitted, count_of, seed_of

_BETA_NAMES = {"frobenius": 2.0, "kullback-leibler": 1.0, "itakura-saito": 0.0}


def _beta(beta_loss):
    if isinstance(beta_loss, str):
        if beta_loss not in _BETA_NAMES:
            raise ValueError(
                f"invalid beta_loss {beta_loss!r}; valid: {', '.join(_BETA_NAMES)} or a float"
            )
        return _BETA_NAMES[beta_loss]
    if isinstance(beta_loss, numbers.Real) and not isinstance(beta_loss, bool):
        return float(beta_loss)
    raise TypeError(f"beta_loss must be a string or a float, got {beta_loss!r}")


class NMF(Params):
    """Non-negative matrix factorisation ``X ~ W H`` under the beta-divergence.

    Minimises ``D_beta(X | W H) + alpha_W-terms + alpha_H-terms`` (scikit-learn's
    objective and penalty scaling) with multiplicative updates computed in Rust
    (``majorize::nmf``, ``solvers::nmf``).

    Parameters
    ----------
    n_components : int or None
        Rank ``k`` (``None``: ``n_features``).
    init : {None, 'random', 'custom'}
        ``'custom'`` uses the ``W`` and ``H`` given to :meth:`fit_transform`; ``None``
        and ``'random'`` draw scikit-learn's 'random' scheme ``|N(0,1)| sqrt(mean X / k)``
        from ``random_state`` with strata's generator (scikit-learn's ``None`` would pick
        NNDSVDa, which strata does not implement).
    solver : {'mu', 'mm', 'heuristic', 'me'}
        ``'mu'``: scikit-learn's multiplicative updates reproduced operation by operation
        (same factors to rounding from the same init, for every beta). ``'mm'``:
        majorization-minimization, exponent gamma(beta) (monotone); ``'heuristic'``:
        exponent 1; ``'me'``: majorization-equalization (monotone) (Fevotte & Idier 2011).
    beta_loss : {'frobenius', 'kullback-leibler', 'itakura-saito'} or float
        beta = 2, 1, 0, or any finite float.
    tol : float
        scikit-learn's stopping rule (every 10 iterations, relative decrease of
        ``sqrt(2 D)``); 0 runs ``max_iter`` iterations.
    max_iter : int
        Maximum number of iterations (each updates W then H once).
    random_state : None, int, RandomState or Generator
        Seed of the random initialisation.
    alpha_W, alpha_H, l1_ratio : float ('same' for alpha_H)
        scikit-learn's regularisation: ``l1 = n_features alpha_W l1_ratio`` on W, etc.

    Attributes
    ----------
    components_ : ndarray (n_components, n_features)
    n_components_ : int
    n_iter_ : int
    reconstruction_err_ : float
        ``sqrt(2 D_beta(X | W H))`` (scikit-learn's definition).
    n_features_in_ : int
    trace_ : dict of ndarray
        ``'objective'``: the penalised objective at every iteration (0 = initial).
    """

    def __init__(
        self,
        n_components=None,
        *,
        init=None,
        solver="mu",
        beta_loss="frobenius",
        tol=1e-4,
        max_iter=200,
        random_state=None,
        alpha_W=0.0,
        alpha_H="same",
        l1_ratio=0.0,
    ):
        self.n_components = n_components
        self.init = init
        self.solver = solver
        self.beta_loss = beta_loss
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio

    def _common(self):
        alpha_h = self.alpha_W if self.alpha_H == "same" else self.alpha_H
        return dict(
            beta=_beta(self.beta_loss),
            solver=self.solver,
            max_iter=count_of("max_iter", self.max_iter, 0),
            tol=float(self.tol),
            alpha_w=float(self.alpha_W),
            alpha_h=float(alpha_h),
            l1_ratio=float(self.l1_ratio),
        )

    def fit_transform(self, X, y=None, W=None, H=None):
        """Learns the factorisation of ``X`` (n_samples x n_features) and returns ``W``
        (n_samples x n_components); ``components_`` is ``H``. ``W`` and ``H`` are the
        initial factors when ``init='custom'``. Computes in X's precision (float32 or
        float64)."""
        X = as_float_array(X)
        if self.init not in (None, "random", "custom"):
            raise ValueError(f"invalid init {self.init!r}; valid: None, 'random', 'custom'")
        if self.init == "custom":
            if W is None or H is None:
                raise ValueError("init='custom' needs both W and H")
            W, H = as_float_array(W, "W"), as_float_array(H, "H")
        else:
            W = H = None
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        k = self.n_components
        if k is None:
            k = X.shape[1]
        if not isinstance(k, (int, np.integer)) or not 1 <= k < 2**63:
            raise ValueError(f"n_components = {k!r} must be a positive int or None")
        out = _native.nmf_fit(
            X, W, H, n_components=int(k), seed=seed_of(self.random_state), **self._common()
        )
        self.components_ = out["H"]
        self.n_components_ = out["H"].shape[0]
        self.n_iter_ = out["n_iter"]
        self.reconstruction_err_ = out["reconstruction_err"]
        self.n_features_in_ = X.shape[1]
        self.trace_ = {"objective": out["objective"]}
        self.status_ = out["status"]
        if out["status"].startswith("diverged"):
            warnings.warn(f"NMF {out['status']}", RuntimeWarning, stacklevel=2)
        elif self.tol > 0 and out["status"] == "max_iter":
            warnings.warn(
                f"Maximum number of iterations {self.max_iter} reached. Increase it to improve convergence.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return out["W"]

    def fit(self, X, y=None, **params):
        """Learns the factorisation of ``X``; returns ``self``."""
        self.fit_transform(X, **params)
        return self

    def transform(self, X):
        """``W`` for new data with ``components_`` fixed (scikit-learn's transform: W
        starts at ``sqrt(mean X / k)`` and takes up to ``max_iter`` updates with the
        stopping rule). Equal to scikit-learn's except for beta = 1 with an L1 penalty on
        W, where scikit-learn 1.9.1 adds the L1 term to its cached row sums of H in place
        (so its penalty grows every iteration); strata keeps the stated objective."""
        check_fitted(self, "components_")
        X = as_float_array(X)
        W, _ = _native.nmf_transform(X, self.components_, **self._common())
        return W

    def inverse_transform(self, X):
        """``X @ components_``: data back from the transformed ``W``."""
        check_fitted(self, "components_")
        return np.asarray(X) @ self.components_
