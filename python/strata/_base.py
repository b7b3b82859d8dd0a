"""Shared plumbing of the estimators: parameters, array checks, seeds."""

import inspect

import numpy as np


class ConvergenceWarning(UserWarning):
    """The iteration budget ended before the stopping rule held."""


class Params:
    """``get_params`` / ``set_params`` / ``repr`` from the ``__init__`` signature, as
    scikit-learn's ``BaseEstimator`` (so the estimators work with ``sklearn.base.clone``
    and grid searches)."""

    def _param_names(self):
        sig = inspect.signature(type(self).__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        ]

    def get_params(self, deep=True):
        """The constructor parameters as a dict (``deep`` is accepted for
        compatibility; there are no nested estimators)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Sets constructor parameters; unknown names raise ``ValueError``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for {type(self).__name__}; valid: {', '.join(valid)}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def as_float_array(x, name="X"):
    """``x`` unchanged when it is a float32/float64 NumPy array (any memory order: the
    Rust side reads it in place); integer and boolean arrays and array-likes become
    float64 (one copy, as scikit-learn). Complex, object or string data is a
    ``TypeError``."""
    if isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64):
        return x
    if hasattr(x, "toarray"):
        raise TypeError(f"{name}: sparse matrices are not supported; pass a dense NumPy array")
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


def count_of(name, value, low=1):
    """``value`` as an int in ``[low, 2**63)`` (the counts the Rust side takes as
    ``usize``); a non-integer (``2.5``, ``True``) or out of range is a ``ValueError``
    naming the parameter, not a silent truncation or the ``OverflowError`` of the
    conversion."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} = {value!r} must be an int (a count is not rounded)")
    n = int(value)
    if not low <= n < 2**63:
        raise ValueError(f"{name} = {value!r} must be an int in [{low}, 2**63)")
    return n


def seed_of(random_state):
    """A 64-bit seed: an int as is, ``None`` from NumPy's global generator (as
    scikit-learn), a ``RandomState`` / ``Generator`` by drawing from it."""
    if random_state is None:
        return int(np.random.randint(0, 2**63 - 1, dtype=np.int64))
    if isinstance(random_state, (int, np.integer)):
        if not 0 <= random_state < 2**64:
            raise ValueError(f"random_state = {random_state} must be in [0, 2**64)")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**63 - 1, dtype=np.int64))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    raise TypeError(f"random_state must be None, an int, a RandomState or a Generator, got {random_state!r}")


def check_fitted(est, attr):
    if not hasattr(est, attr):
        raise AttributeError(
            f"this {type(est).__name__} instance is not fitted yet; call fit first"
        )
