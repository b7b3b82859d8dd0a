"""``strata.MLPClassifier`` / ``strata.MLPRegressor``: networks trained by any solver of
strata's registry, with ``sklearn.neural_network``'s API."""

import json
import warnings

import numpy as np

from . import _native
from ._base import Params, as_float_array, check_fitted, count_of, seed_of


def solvers():
    """``[(name, description), ...]`` of every network solver in strata's registry (the
    values ``solver=`` accepts), in report order."""
    return list(_native.solver_names())


class _BaseMLP(Params):
    _softmax = False

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        max_iter=200,
        random_state=None,
        **solver_options,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.random_state = random_state
        self.solver_options = dict(solver_options)

    def get_params(self, deep=True):
        """The constructor parameters, the solver options included by name."""
        params = super().get_params(deep)
        params.update(self.solver_options)
        return params

    def set_params(self, **params):
        """Sets constructor parameters; any other name becomes a solver option."""
        known = set(self._param_names())
        for name, value in params.items():
            if name in known:
                setattr(self, name, value)
            else:
                self.solver_options[name] = value
        return self

    def _fit(self, X, y, n_classes):
        X = as_float_array(X)
        hidden = self.hidden_layer_sizes
        if isinstance(hidden, (int, np.integer)):
            hidden = (hidden,)
        if any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) for h in hidden):
            raise ValueError(
                f"hidden_layer_sizes = {self.hidden_layer_sizes} must be integers "
                "(a width is not rounded)"
            )
        hidden = [int(h) for h in hidden]
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden_layer_sizes = {self.hidden_layer_sizes} must be positive")
        hidden = [count_of("hidden_layer_sizes", h) for h in hidden]
        if self.batch_size == "auto":
            batch = None
        elif isinstance(self.batch_size, (int, np.integer)):
            batch = count_of("batch_size", self.batch_size)
        else:
            raise ValueError(f"batch_size = {self.batch_size!r} must be 'auto' or an int")
        for name, value in self.solver_options.items():
            if isinstance(value, float) and not np.isfinite(value):
                raise ValueError(f"solver option {name} = {value} must be finite")
        try:
            options = json.dumps(self.solver_options, allow_nan=False)
        except TypeError as e:
            raise TypeError(f"solver options must be JSON-serialisable: {e}") from None
        except ValueError as e:  # a NaN or infinity nested in a list
            raise ValueError(f"solver options must be finite: {e}") from None
        out = _native.mlp_fit(
            X,
            y,
            n_classes=n_classes,
            hidden=hidden,
            activation=self.activation,
            alpha=float(self.alpha),
            max_iter=count_of("max_iter", self.max_iter, 0),
            batch_size=batch,
            seed=seed_of(self.random_state),
            solver=self.solver,
            options=options,
        )
        self.coefs_ = list(out["coefs"])
        self.intercepts_ = list(out["intercepts"])
        self.trace_ = dict(out["trace"])
        self.loss_curve_ = list(self.trace_["objective"][1:])
        self.loss_ = float(self.trace_["objective"][-1])
        self.n_iter_ = out["n_iter"]
        self.n_features_in_ = X.shape[1]
        self.n_layers_ = len(hidden) + 2
        self.status_ = out["status"]
        self.solver_name_ = out["solver"]
        self.hyperparameters_ = json.loads(out["hyperparameters"])
        if out["diverged"]:
            warnings.warn(f"{self.solver}: {out['status']}", RuntimeWarning, stacklevel=3)
        return self

    def _forward(self, X):
        check_fitted(self, "coefs_")
        return _native.mlp_forward(
            as_float_array(X),
            self.coefs_,
            self.intercepts_,
            activation=self.activation,
            softmax=self._softmax,
        )


_DOC = """

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
        Widths of the hidden layers.
    activation : {{'relu', 'tanh', 'logistic', 'identity'}}
        Hidden activation (the output layer is linear{out}).
    solver : str
        Any network solver of strata's registry (:func:`strata.solvers`): ``'adam'``,
        ``'lbfgs'``, ``'sgd-momentum'``, ``'admm-taylor'``, ``'dladmm'``, ``'bcd'``,
        ``'block-mm'``, ``'mac'``, ``'proxprop'``, ... with its documented defaults. An
        unknown name raises ``ValueError`` listing the valid ones.
    alpha : float
        L2 penalty as in scikit-learn: the objective is
        ``mean loss + alpha / (2 n_samples) sum_l ||W_l||^2``.
    batch_size : 'auto' or int
        'auto' keeps the solver's own default; an int sets its mini-batch size
        (``ValueError`` for full-batch methods).
    max_iter : int
        Iterations of the solver: epochs for mini-batch methods (one step = one pass),
        iterations (sweeps) for full-batch and layer-wise methods.
    random_state : None, int, RandomState or Generator
        Seed of the initial weights and of the solver's randomness (the same seed gives
        the same initial network as ``cargo xtask compare``).
    **solver_options
        Fields of the solver's configuration to replace (e.g. ``lr=1e-2`` for Adam,
        ``history=5`` for L-BFGS, ``gamma=5.0`` for ``admm-taylor``); an unknown name
        raises ``ValueError`` listing the valid ones (``hyperparameters_`` shows them).

    Attributes
    ----------
    coefs_ : list of ndarray (n_in, n_out)
    intercepts_ : list of ndarray (n_out,)
    loss_curve_ : list of float
        The true training objective (loss + penalty over the whole training set) after
        every iteration.
    loss_ : float
        The final training objective.
    n_iter_ : int
    trace_ : dict of ndarray
        Every field strata records per iteration, iteration 0 included: ``iteration``,
        ``epochs``, ``samples_seen``, ``wall_time_s``, ``objective``, ``surrogate``,
        ``train_accuracy``, ``forward``, ``backward``, ``inner_solves`` and the solver's
        extras (residuals, penalties, step sizes) by name; NaN where not recorded.
    status_ : str
        How the run ended (``max_iter``, ``converged: ...``, ``diverged: ...``).
    solver_name_, hyperparameters_ : str, dict
        The solver's full name and the configuration it ran with.
"""


class MLPClassifier(_BaseMLP):
    __doc__ = (
        """Multilayer perceptron classifier: softmax cross-entropy on the classes of ``y``
    (any labels; ``classes_`` keeps them), trained by a strata solver."""
        + _DOC.format(out=", softmax probabilities")
        + """    classes_ : ndarray
        The class labels.
"""
    )

    _softmax = True

    def fit(self, X, y):
        """Trains on ``X`` (n_samples x n_features) and labels ``y``; returns ``self``."""
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D (n_samples,), got shape {y.shape}")
        self.classes_, idx = np.unique(y, return_inverse=True)
        self.n_outputs_ = len(self.classes_)
        self.out_activation_ = "softmax"
        return self._fit(X, idx.astype(np.int64), len(self.classes_))

    def predict_proba(self, X):
        """Class probabilities, (n_samples, n_classes), columns in ``classes_`` order."""
        return self._forward(X)

    def predict(self, X):
        """The most probable class of every sample."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X, y):
        """Mean accuracy on ``(X, y)``."""
        return float(np.mean(self.predict(X) == np.asarray(y)))


class MLPRegressor(_BaseMLP):
    __doc__ = (
        """Multilayer perceptron regressor: squared error ``(1/2)||f(x) - y||^2`` averaged
    over samples, trained by a strata solver."""
        + _DOC.format(out="")
    )

    def fit(self, X, y):
        """Trains on ``X`` (n_samples x n_features) and targets ``y`` (n_samples,) or
        (n_samples, n_targets); returns ``self``."""
        y = as_float_array(y, "y")
        self._y_1d = y.ndim == 1
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        self.n_outputs_ = y.shape[1] if y.ndim == 2 else None
        self.out_activation_ = "identity"
        return self._fit(X, y, None)

    def predict(self, X):
        """Predictions, (n_samples,) or (n_samples, n_targets) as ``y`` in fit."""
        out = self._forward(X)
        return out.ravel() if self._y_1d else out

    def score(self, X, y):
        """Coefficient of determination R^2 (averaged uniformly over targets)."""
        y = np.asarray(y, dtype=np.float64)
        p = np.asarray(self.predict(X), dtype=np.float64).reshape(y.shape)
        y2, p2 = y.reshape(len(y), -1), p.reshape(len(p), -1)
        ss_res = ((y2 - p2) ** 2).sum(axis=0)
        ss_tot = ((y2 - y2.mean(axis=0)) ** 2).sum(axis=0)
        return float(np.mean(1.0 - ss_res / ss_tot))
