"""strata from Python: structured training (MM, ADMM, lifted, BCD) and beta-NMF.

The estimators follow scikit-learn's conventions:

- :class:`NMF` -- beta-NMF; ``solver='mu'`` reproduces scikit-learn's multiplicative
  updates exactly, ``'mm'``, ``'heuristic'`` and ``'me'`` are strata's rules
  (Fevotte & Idier 2011).
- :class:`MLPClassifier`, :class:`MLPRegressor` -- multilayer perceptrons trained by any
  network solver of strata's registry (:func:`solvers` lists them): gradient baselines
  (``'adam'``, ``'lbfgs'``, ...) and structured methods (``'admm-taylor'``, ``'bcd'``,
  ``'block-mm'``, ...).
- :func:`compare` -- ``cargo xtask compare`` from Python.

All numerics run in the Rust crates (module ``strata._native``); this package only
validates arguments, converts labels and keeps the fitted attributes. Training releases
the GIL and can be interrupted with Ctrl-C (``KeyboardInterrupt``) between iterations.
"""

from ._base import ConvergenceWarning
from ._compare import CompareResults, compare
from ._mlp import MLPClassifier, MLPRegressor, solvers
from ._nmf import NMF

__all__ = [
    "NMF",
    "MLPClassifier",
    "MLPRegressor",
    "compare",
    "CompareResults",
    "solvers",
    "ConvergenceWarning",
]
