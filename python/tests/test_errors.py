"""Every bad input raises ValueError / TypeError carrying the Rust error's message."""

import json

import numpy as np
import pytest

import strata
from strata import _native

rng = np.random.RandomState(0)
V = rng.rand(12, 8) + 0.1


@pytest.mark.parametrize(
    "mutate, kw, match",
    [
        (lambda v: v.__setitem__((2, 3), np.nan), {}, r"non-finite value in V at \(2, 3\)"),
        (lambda v: v.__setitem__((1, 1), -0.5), {}, r"negative value .* in V at \(1, 1\)"),
        (lambda v: v.__setitem__((0, 0), 0.0), {"beta_loss": 0.0}, r"zero entry in V at \(0, 0\)"),
    ],
)
def test_nmf_bad_data(mutate, kw, match):
    X = V.copy()
    mutate(X)
    with pytest.raises(ValueError, match=match):
        strata.NMF(2, random_state=0, **kw).fit(X)


def test_nmf_bad_arguments():
    with pytest.raises(ValueError, match="unknown NMF solver \"cd\"; valid solvers: mu, mm, heuristic, me"):
        strata.NMF(2, solver="cd").fit(V)
    with pytest.raises(ValueError, match="invalid beta_loss"):
        strata.NMF(2, beta_loss="hellinger").fit(V)
    with pytest.raises(ValueError, match=r"beta = inf must be finite"):
        strata.NMF(2, beta_loss=float("inf")).fit(V)
    with pytest.raises(ValueError, match=r"l1_ratio = 2 must be in \[0, 1\]"):
        strata.NMF(2, l1_ratio=2.0).fit(V)
    with pytest.raises(ValueError, match=r"l1_w = -.*penalty must be >= 0"):
        strata.NMF(2, alpha_W=-1.0, l1_ratio=1.0).fit(V)
    with pytest.raises(ValueError, match="max_iterations = 0 must be >= 1"):
        strata.NMF(2, max_iter=0).fit(V)
    with pytest.raises(ValueError, match="tol = -1 must be >= 0"):
        strata.NMF(2, tol=-1.0).fit(V)
    with pytest.raises(ValueError, match="n_components"):
        strata.NMF(0).fit(V)
    with pytest.raises(ValueError, match="invalid init"):
        strata.NMF(2, init="nndsvd").fit(V)


def test_nmf_bad_custom_factors():
    W0, H0 = np.ones((12, 2)), np.ones((2, 8))
    with pytest.raises(ValueError, match="needs both W and H"):
        strata.NMF(2, init="custom").fit_transform(V, W=W0)
    with pytest.raises(ValueError, match=r"shape mismatch in nmf::validate_inputs: .*V is 12x8, W is 11x2"):
        strata.NMF(2, init="custom").fit_transform(V, W=np.ones((11, 2)), H=H0)
    with pytest.raises(ValueError, match="n_components = 3 but the initial W has 2 columns"):
        strata.NMF(3, init="custom").fit_transform(V, W=W0, H=H0)
    W0z = W0.copy()
    W0z[0, 0] = 0
    with pytest.raises(ValueError, match=r"zero entry in W at \(0, 0\)"):
        strata.NMF(2, init="custom").fit_transform(V, W=W0z, H=H0)


def test_nmf_bad_types_and_transform():
    with pytest.raises(TypeError, match="must hold real numbers, got dtype complex128"):
        strata.NMF(2).fit(V.astype(complex))
    with pytest.raises(TypeError, match="X must be a 2-D float32 or float64 NumPy array, got a 1-D array"):
        _native.nmf_fit(V[0], None, None, n_components=2, beta=2.0, solver="mu", max_iter=5, tol=0.0,
                        alpha_w=0.0, alpha_h=0.0, l1_ratio=0.0, seed=0)
    with pytest.raises(ValueError, match="must be 2-D"):
        strata.NMF(2).fit(V[0])
    with pytest.raises(AttributeError, match="not fitted"):
        strata.NMF(2).transform(V)
    m = strata.NMF(2, random_state=0, max_iter=20).fit(V)
    with pytest.raises(ValueError, match="X has 5 features but components_ is 2x8"):
        m.transform(V[:, :5])
    X = V.copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NMF X: entry \(0, 0\) = NaN must be finite"):
        m.transform(X)


Xd = rng.rand(30, 4)
yd = (rng.rand(30) * 3).astype(int)


def test_mlp_bad_data():
    X = Xd.copy()
    X[4, 2] = np.inf
    with pytest.raises(ValueError, match="non-finite value in inputs at row 2, column 4"):
        strata.MLPClassifier((3,), max_iter=2).fit(X, yd)
    with pytest.raises(ValueError, match="data set has 30 input columns but 29 targets"):
        strata.MLPClassifier((3,), max_iter=2).fit(Xd, yd[:-1])
    with pytest.raises(ValueError, match="non-finite value in targets"):
        strata.MLPRegressor((3,), max_iter=2).fit(Xd, np.where(yd == 0, np.nan, 1.0))
    with pytest.raises(TypeError, match="must hold real numbers"):
        strata.MLPClassifier((3,), max_iter=2).fit(Xd.astype(object).astype(str), yd)


def test_labels_out_of_range_come_from_the_rust_data_set():
    kw = dict(hidden=[3], activation="relu", alpha=0.0, max_iter=2, batch_size=None, seed=0,
              solver="adam", options="{}")
    with pytest.raises(ValueError, match="label 3 at sample 1 is out of range for 3 classes"):
        _native.mlp_fit(Xd, np.array([0, 3] + [0] * 28, dtype=np.int64), n_classes=3, **kw)
    with pytest.raises(ValueError, match="label -1 at sample 0 is negative"):
        _native.mlp_fit(Xd, np.array([-1] + [0] * 29, dtype=np.int64), n_classes=3, **kw)
    with pytest.raises(TypeError, match="1-D int64"):
        _native.mlp_fit(Xd, yd.astype(np.float64), n_classes=3, **kw)


def test_mlp_bad_arguments():
    with pytest.raises(ValueError, match=r"unknown solver \"sgd\"; valid solvers: adam, .*lbfgs.*admm-taylor.*bcd"):
        strata.MLPClassifier((3,), solver="sgd").fit(Xd, yd)
    with pytest.raises(ValueError, match="unknown solver option `bogus`; valid options: .*lr"):
        strata.MLPClassifier((3,), solver="adam", bogus=1).fit(Xd, yd)
    with pytest.raises(ValueError, match="invalid solver option value"):
        strata.MLPClassifier((3,), solver="lbfgs", history="ten").fit(Xd, yd)
    with pytest.raises(ValueError, match=r"invalid Adam config: lr = -1"):
        strata.MLPClassifier((3,), solver="adam", lr=-1.0).fit(Xd, yd)
    with pytest.raises(ValueError, match="\"lbfgs\" has no mini-batch setting"):
        strata.MLPClassifier((3,), solver="lbfgs", batch_size=10).fit(Xd, yd)
    with pytest.raises(ValueError, match="unknown activation"):
        strata.MLPClassifier((3,), activation="gelu").fit(Xd, yd)
    with pytest.raises(ValueError, match="alpha = -1 must be >= 0"):
        strata.MLPClassifier((3,), alpha=-1.0).fit(Xd, yd)
    with pytest.raises(ValueError, match="max_iterations = 0"):
        strata.MLPClassifier((3,), max_iter=0).fit(Xd, yd)
    with pytest.raises(TypeError, match="JSON-serialisable"):
        strata.MLPClassifier((3,), lr=object()).fit(Xd, yd)
    clf = strata.MLPClassifier((3,), solver="lbfgs", max_iter=2, random_state=0).fit(Xd, yd)
    with pytest.raises(ValueError, match="shape mismatch"):
        clf.predict(Xd[:, :3])
    with pytest.raises(AttributeError, match="not fitted"):
        strata.MLPRegressor().predict(Xd)


def test_compare_bad_option():
    with pytest.raises(ValueError, match="--bogus"):
        strata.compare(bogus=1)
    with pytest.raises(ValueError, match="unknown solver|no-such"):
        strata.compare(solvers=["no-such"], problems="blobs", epochs=1, out="/tmp/strata-py-never")


def test_sizes_too_large_are_errors_not_aborts():
    """Review 2: a mistyped size allocated terabytes and aborted the interpreter
    (``memory allocation ... failed``): the network's parameters and the NMF factors are
    counted first (at most 10^9) in the Rust library."""
    with pytest.raises(ValueError, match="more than 1000000000 parameters"):
        strata.MLPClassifier((10**12,), max_iter=1).fit(Xd, yd)
    with pytest.raises(ValueError, match="more than 1000000000 factor entries"):
        strata.NMF(10**9, max_iter=1).fit(V)


def test_layer_outputs_too_large_are_errors_not_aborts():
    """A width whose parameters fit but whose layer outputs on the data do not
    (``(10**6,)`` on 2000 samples: a failed 16 GB allocation aborted the interpreter)
    is refused by ``NetProblem::new`` before the forward pass: here 2 x 20,000 outputs
    per sample on 120,000 samples, 38 GB of f64 against the 16 GiB cap."""
    X = np.zeros((120_000, 4))
    y = np.arange(120_000) % 2
    with pytest.raises(ValueError, match="more than MAX_ACTIVATION_BYTES"):
        strata.MLPClassifier((20_000,), max_iter=1).fit(X, y)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: strata.MLPClassifier((3,), max_iter=-1), r"max_iter = -1 must be an int in \[0, 2\*\*63\)"),
        (lambda: strata.MLPClassifier((3,), max_iter=2**70), r"max_iter = .* must be an int"),
        (lambda: strata.MLPClassifier((3,), batch_size=-1), r"batch_size = -1 must be an int in \[1"),
        (lambda: strata.MLPClassifier((2**70,)), r"hidden_layer_sizes = .* must be an int"),
        (lambda: strata.MLPClassifier((2.5,)), r"hidden_layer_sizes = .* must be integers"),
        (lambda: strata.MLPClassifier((True,)), r"hidden_layer_sizes = .* must be integers"),
        (lambda: strata.MLPClassifier((3,), random_state=2**64), r"random_state = .* must be in \[0, 2\*\*64\)"),
        (lambda: strata.MLPClassifier((3,), lr=float("nan")), "solver option lr = nan must be finite"),
        (lambda: strata.MLPClassifier((3,), lr=float("inf")), "solver option lr = inf must be finite"),
        (lambda: strata.NMF(2, max_iter=-1), r"max_iter = -1 must be an int"),
        (lambda: strata.NMF(2, max_iter=2.5), r"max_iter = 2.5 must be an int"),
        (lambda: strata.MLPClassifier((3,), max_iter=2.5), r"max_iter = 2.5 must be an int"),
        (lambda: strata.NMF(2**70), r"n_components = .* must be a positive int"),
    ],
)
def test_out_of_range_counts_are_value_errors(make, match):
    """Review 2: these raised OverflowError (the conversion to usize / u64) or, for a
    NaN option, a ValueError saying the options were not a JSON object."""
    est = make()
    with pytest.raises(ValueError, match=match):
        if isinstance(est, strata.NMF):
            est.fit(V)
        else:
            est.fit(Xd, yd)
