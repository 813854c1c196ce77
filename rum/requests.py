"""Correction requests for :func:`rum.correct`: pairs ``(z, z~)``, deletions have no ``z~``.

Examples:
    >>> import numpy as np, rum
    >>> X, y = np.eye(3, dtype=np.float32), np.array([0, 1, 1])
    >>> rum.requests.relabel((X, y), [2], [0])
    Request(1 item(s): 1 replaced, 0 deleted)
"""

from rum.influence.requests import Request, delete, relabel, replace_features

__all__ = ["Request", "replace_features", "relabel", "delete"]
