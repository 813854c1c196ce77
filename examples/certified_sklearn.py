"""Certified removal from a scikit-learn logistic regression.

1. Fit with objective perturbation (noise sigma) so that later corrections
   can be certified: ``fit_certified_logistic_regression``.
2. Remove points with ``rum.correct(estimator, ...)``, asking for an
   (epsilon, delta) certificate. The result reports the residual bound, the
   epsilon spent so far and whether the guarantee holds; the returned
   estimator carries the spent budget into the next request.
3. An ordinary (multinomial or unperturbed) estimator is corrected too, but
   gets no certificate: it is refused or reported as uncertified.

Run: python examples/certified_sklearn.py   (a few seconds)
"""

import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

import rum
from rum.influence import fit_certified_logistic_regression

X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)
X = np.hstack([X, np.ones((len(X), 1))])  # intercept as a penalised feature

clf = fit_certified_logistic_regression(X, y, C=0.2, sigma=1.0, random_state=0)
print(f"accuracy of the perturbed model: {clf.score(X, y):.3f}")

train = (X, y)
for step in range(3):
    gone = np.arange(5 * step, 5 * step + 5)      # positions in the current training set
    request = rum.requests.delete(train, gone)
    res = rum.correct(clf, request, train_set=train, epsilon=1.0, delta=1e-4)
    c = res.certificate
    print(f"request {step}: residual bound {c.residual_bound:.2e}, epsilon spent "
          f"{c.epsilon_spent:.2e} of 1.0, certified={c.certified}")
    keep = np.setdiff1d(np.arange(len(train[1])), gone)
    train = (train[0][keep], train[1][keep])
    clf = res.model                                  # the next request starts from here

# A multinomial model cannot be certified: rum refuses rather than fake it.
from sklearn.datasets import load_wine  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

Xw, yw = load_wine(return_X_y=True)
wine = LogisticRegression(max_iter=1000).fit(StandardScaler().fit_transform(Xw), yw)
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rum.correct(wine, rum.requests.delete((Xw, yw), [0]), train_set=(Xw, yw),
                    epsilon=1.0, delta=1e-4)
except rum.exceptions.IneligibleModelError as err:
    print("refused:", str(err)[:100], "...")
