"""A confidence-based membership-inference attack (as used by the RUM and SalUn papers)."""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

__all__ = ["mia_score"]


def mia_score(
    member_conf: np.ndarray,
    nonmember_conf: np.ndarray,
    target_conf: np.ndarray,
    *,
    random_state: int = 0,
    max_train: int = 5000,
) -> float:
    """Fraction of target items an attacker judges non-members.

    An RBF SVC (C=3, gamma="auto") is trained on the true-label confidence of
    members (retain items, label 1) against non-members (test items, label 0),
    using equally many of each (at most ``max_train // 2`` per side, drawn with
    ``random_state``), and then applied to the target (forget) items. A score
    near the retrained model's means the forget items look as unseen as they
    would after retraining.

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> members = rng.uniform(0.9, 1.0, 200)
        >>> non_members = rng.uniform(0.0, 0.6, 200)
        >>> mia_score(members, non_members, np.array([0.1, 0.2, 0.95, 0.99]))
        0.5
    """
    member_conf = np.asarray(member_conf, dtype=float).ravel()
    nonmember_conf = np.asarray(nonmember_conf, dtype=float).ravel()
    target_conf = np.asarray(target_conf, dtype=float).ravel()
    if len(target_conf) == 0:
        return float("nan")
    rng = np.random.default_rng(random_state)
    n = min(len(member_conf), len(nonmember_conf), max_train // 2)
    if n == 0:
        return float("nan")
    m = rng.choice(member_conf, n, replace=False)
    nm = rng.choice(nonmember_conf, n, replace=False)
    X = np.concatenate([m, nm]).reshape(-1, 1)
    y = np.concatenate([np.ones(n), np.zeros(n)])
    scaler = StandardScaler().fit(X)
    # a seed of its own: without one, scikit-learn draws it from numpy's global RNG
    clf = SVC(C=3, gamma="auto", kernel="rbf", random_state=int(rng.integers(2**31 - 1)))
    clf.fit(scaler.transform(X), y)
    pred = clf.predict(scaler.transform(target_conf.reshape(-1, 1)))
    return float((pred == 0).mean())
