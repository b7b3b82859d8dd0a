"""Shared fixtures: the digits data embedded in the repository (same split as strata's
runner is not needed here; a fixed stratified split with training-set standardisation)."""

import os

import numpy as np
import pytest

DIGITS_CSV = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "bench-suite", "data", "digits.csv")


def load_digits_split(test_fraction=0.2, seed=0):
    """Digits (1797 x 64, labels in the last column) split per class with ``seed``,
    standardised with the training mean and standard deviation."""
    data = np.loadtxt(DIGITS_CSV, delimiter=",")
    X, y = data[:, :-1], data[:, -1].astype(np.int64)
    rng = np.random.RandomState(seed)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        test[idx[: int(round(test_fraction * len(idx)))]] = True
    Xtr, Xte = X[~test], X[test]
    mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0)
    sd[sd == 0] = 1.0
    return (Xtr - mu) / sd, y[~test], (Xte - mu) / sd, y[test]


@pytest.fixture(scope="session")
def digits():
    return load_digits_split()
