"""strata.MLPClassifier / MLPRegressor on digits, through the solver registry."""

import numpy as np
import pytest

import strata


@pytest.mark.parametrize("solver", ["adam", "lbfgs", "admm-taylor", "bcd"])
def test_digits_accuracy_at_least_90_percent(digits, solver):
    Xtr, ytr, Xte, yte = digits
    clf = strata.MLPClassifier(hidden_layer_sizes=(128,), solver=solver, random_state=0)
    clf.fit(Xtr, ytr)
    acc = clf.score(Xte, yte)
    print(f"{solver}: test accuracy {acc:.4f}, n_iter {clf.n_iter_}, status {clf.status_}, "
          f"final objective {clf.loss_:.4f}")
    assert acc >= 0.9, (solver, acc)
    # The fitted attributes follow scikit-learn's layout.
    assert [c.shape for c in clf.coefs_] == [(64, 128), (128, 10)]
    assert [b.shape for b in clf.intercepts_] == [(128,), (10,)]
    assert len(clf.loss_curve_) == clf.n_iter_ == len(clf.trace_["objective"]) - 1
    assert clf.loss_curve_[-1] < clf.trace_["objective"][0]
    p = clf.predict_proba(Xte)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    assert set(clf.trace_) >= {"iteration", "epochs", "objective", "train_accuracy", "wall_time_s"}


def test_loss_curve_is_the_true_training_objective(digits):
    """loss_curve_[-1] is mean cross-entropy + alpha/(2n)||W||^2 of the returned weights."""
    Xtr, ytr, _, _ = digits
    clf = strata.MLPClassifier((16,), solver="lbfgs", alpha=1e-2, max_iter=20, random_state=1).fit(Xtr, ytr)
    p = clf.predict_proba(Xtr)
    ce = -np.mean(np.log(p[np.arange(len(ytr)), ytr]))
    pen = 1e-2 / (2 * len(ytr)) * sum((W**2).sum() for W in clf.coefs_)
    assert abs(clf.loss_curve_[-1] - (ce + pen)) <= 1e-9 * (ce + pen)


def test_string_labels_and_options(digits):
    Xtr, ytr, Xte, yte = digits
    names = np.array(["d%d" % v for v in range(10)])
    clf = strata.MLPClassifier((32,), solver="adam", max_iter=5, random_state=0, lr=1e-2, batch_size=32)
    clf.fit(Xtr, names[ytr])
    assert clf.hyperparameters_["lr"] == 1e-2
    assert clf.hyperparameters_["batching"]["MiniBatch"]["size"] == 32
    assert clf.predict(Xte[:3]).dtype == names.dtype and set(clf.classes_) == set(names)
    assert clf.get_params()["lr"] == 1e-2


def test_every_registry_solver_is_reachable():
    names = [n for n, _ in strata.solvers()]
    assert {"adam", "lbfgs", "admm-taylor", "bcd", "block-mm"} <= set(names)


def test_regressor_fits_a_linear_map():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3
    reg = strata.MLPRegressor((8,), activation="tanh", solver="lbfgs", alpha=0.0, max_iter=200, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (200,)
    assert reg.score(X, y) > 0.99
    Y2 = np.stack([y, -y], axis=1)
    reg2 = strata.MLPRegressor((8,), solver="lbfgs", max_iter=50, random_state=0).fit(X, Y2)
    assert reg2.predict(X).shape == (200, 2)


def test_same_seed_same_weights(digits):
    Xtr, ytr, _, _ = digits
    a = strata.MLPClassifier((16,), solver="bcd", max_iter=3, random_state=5).fit(Xtr, ytr)
    b = strata.MLPClassifier((16,), solver="bcd", max_iter=3, random_state=5).fit(Xtr, ytr)
    assert all(np.array_equal(x, y) for x, y in zip(a.coefs_, b.coefs_))
