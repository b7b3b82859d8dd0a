"""NumPy input without copies where the layout allows, and dtype handling."""

import tracemalloc

import numpy as np
import pytest

import strata
from strata import _native


def test_contiguous_layouts_take_the_slice_path_and_views_the_strided_one():
    X = np.random.RandomState(0).rand(50, 8)
    assert _native.read_path(X) == ("float64", "contiguous")
    assert _native.read_path(np.asfortranarray(X)) == ("float64", "contiguous")
    assert _native.read_path(X.astype(np.float32)) == ("float32", "contiguous")
    assert _native.read_path(X[:, ::2]) == ("float64", "strided")
    assert _native.read_path(X.T) == ("float64", "contiguous")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
def test_no_numpy_side_copy_of_float_input(dtype, order):
    """tracemalloc sees every NumPy buffer allocation: fitting on an 8 MB float array
    (C or Fortran order) allocates far less than that on the Python side."""
    X = np.asarray(np.random.RandomState(0).rand(2000, 500) + 0.1, dtype=dtype, order=order)
    m = strata.NMF(2, solver="mm", max_iter=1, tol=0, random_state=0)
    tracemalloc.start()
    try:
        m.fit_transform(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 10, (peak, X.nbytes)


def test_integer_input_is_converted_once():
    X = (np.random.RandomState(0).rand(2000, 500) * 100).astype(np.int64) + 1
    tracemalloc.start()
    try:
        strata.NMF(2, solver="mm", max_iter=1, tol=0, random_state=0).fit_transform(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak >= X.size * 8  # the float64 copy


def test_layouts_give_identical_results_and_inputs_are_untouched():
    rng = np.random.RandomState(1)
    big = rng.rand(60, 40) + 0.1
    X = big[:, ::2]  # strided
    Xc, Xf = np.ascontiguousarray(X), np.asfortranarray(X)
    before = Xc.copy()
    outs = [strata.NMF(3, solver="mu", max_iter=30, tol=0, random_state=3).fit_transform(a) for a in (X, Xc, Xf)]
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[1], outs[2])
    assert np.array_equal(Xc, before)
    y = (rng.rand(60) * 3).astype(int)
    fits = [strata.MLPClassifier((5,), solver="lbfgs", max_iter=5, random_state=0).fit(a, y) for a in (X, Xc, Xf)]
    assert all(np.array_equal(f.coefs_[0], fits[0].coefs_[0]) for f in fits)


def test_float32_runs_in_single_precision():
    rng = np.random.RandomState(2)
    V = rng.rand(30, 20) + 0.1
    W0, H0 = rng.rand(30, 3) + 0.1, rng.rand(3, 20) + 0.1
    kw = dict(n_components=3, init="custom", solver="mu", beta_loss=1.0, max_iter=50, tol=0)
    m32, m64 = strata.NMF(**kw), strata.NMF(**kw)
    W32 = m32.fit_transform(V.astype(np.float32), W=W0, H=H0)
    W64 = m64.fit_transform(V, W=W0, H=H0)
    assert W32.dtype == np.float32 and m32.components_.dtype == np.float32
    assert W64.dtype == np.float64
    np.testing.assert_allclose(W32, W64, rtol=1e-3)
    y = (rng.rand(30) * 2).astype(int)
    clf = strata.MLPClassifier((4,), solver="adam", max_iter=3, random_state=0).fit(V.astype(np.float32), y)
    assert clf.coefs_[0].dtype == np.float32 and clf.predict_proba(V).shape == (30, 2)


def test_outputs_are_owned_arrays_in_scikit_learn_layout():
    rng = np.random.RandomState(3)
    X, y = rng.rand(40, 6), (rng.rand(40) * 3).astype(int)
    clf = strata.MLPClassifier((5,), solver="lbfgs", max_iter=3, random_state=0).fit(X, y)
    W = clf.coefs_[0]
    assert W.shape == (6, 5) and W.flags["C_CONTIGUOUS"] and W.flags["OWNDATA"] is False
    # Predictions through the coefficients agree with a NumPy forward pass.
    h = np.maximum(X @ clf.coefs_[0] + clf.intercepts_[0], 0)
    z = h @ clf.coefs_[1] + clf.intercepts_[1]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(X), p / p.sum(axis=1, keepdims=True), rtol=1e-12)
