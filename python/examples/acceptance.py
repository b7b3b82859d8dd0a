"""The acceptance script of issue #16: strata.NMF(solver='mu') against scikit-learn's
non_negative_factorization for beta in {0, 0.5, 1, 2} from the same initial factors, and
MLPClassifier(solver='admm-taylor') on digits.

Run after `pip install ./python` (needs scikit-learn): python python/examples/acceptance.py
Exits with status 1 if a check fails.
"""

import sys

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import non_negative_factorization
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import strata

ok = True
rng = np.random.RandomState(0)
V = rng.gamma(2.0, 1.0, size=(60, 40)) + 0.05
W0 = rng.uniform(0.1, 1.0, size=(60, 4))
H0 = rng.uniform(0.1, 1.0, size=(4, 40))
for b in [0.0, 0.5, 1.0, 2.0]:
    nmf = strata.NMF(n_components=4, init="custom", solver="mu", beta_loss=b, max_iter=200, tol=0)
    W = nmf.fit_transform(V, W=W0, H=H0)
    # scikit-learn updates custom factors in place: give it copies.
    Wr, Hr, n_iter = non_negative_factorization(
        V, W=W0.copy(), H=H0.copy(), n_components=4, init="custom", solver="mu", beta_loss=b, max_iter=200, tol=0
    )
    rw = np.max(np.abs(W - Wr)) / np.max(np.abs(Wr))
    rh = np.max(np.abs(nmf.components_ - Hr)) / np.max(np.abs(Hr))
    good = rw <= 1e-9 and rh <= 1e-9 and nmf.n_iter_ == n_iter
    ok &= good
    print(f"NMF beta={b}: max relative difference W {rw:.2e}, H {rh:.2e}, iterations {nmf.n_iter_} vs {n_iter} -> {'ok' if good else 'FAIL'}")

X, y = load_digits(return_X_y=True)
X, Xt, y, yt = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
scaler = StandardScaler().fit(X)
X, Xt = scaler.transform(X), scaler.transform(Xt)
clf = strata.MLPClassifier(hidden_layer_sizes=(128,), solver="admm-taylor", random_state=0).fit(X, y)
acc = clf.score(Xt, yt)
ok &= acc >= 0.9
print(f"MLPClassifier admm-taylor on digits: test accuracy {acc:.4f} after {clf.n_iter_} iterations "
      f"({clf.status_}), final training objective {clf.loss_:.4f} -> {'ok' if acc >= 0.9 else 'FAIL'}")
sys.exit(0 if ok else 1)
