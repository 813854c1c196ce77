"""Linear models (softmax and binary logistic): the one model family whose influence
update is exact, and how to recognise it."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BinaryLogit", "is_linear_model"]

_PARAM_FREE_OK = (nn.Sequential, nn.Flatten, nn.Identity)


class BinaryLogit(nn.Module):
    """A binary logistic model ``z = w^T x + b`` that returns the logits ``[0, z]``.

    Cross-entropy on these two logits is the logistic loss of ``z``, so the
    model has exactly the parameters of scikit-learn's binary
    ``LogisticRegression`` while fitting rum's ``(batch, n_classes)`` convention.

    Examples:
        >>> import torch
        >>> m = BinaryLogit(3)
        >>> m(torch.zeros(2, 3)).shape
        torch.Size([2, 2])
    """

    def __init__(self, n_features: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(n_features, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x.reshape(len(x), -1))
        return torch.cat([torch.zeros_like(z), z], dim=1)


def is_linear_model(model: nn.Module) -> bool:
    """Whether ``model`` is one linear layer (optionally with Flatten/Identity around it).

    Cross-entropy plus an L2 penalty is then strictly convex in the parameters.

    Examples:
        >>> import torch
        >>> is_linear_model(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)))
        True
        >>> is_linear_model(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)))
        False
    """
    linears = 0
    for mod in model.modules():
        if isinstance(mod, nn.Linear):
            linears += 1
            continue
        if isinstance(mod, BinaryLogit):
            continue
        if any(True for _ in mod.parameters(recurse=False)) or any(
            True for _ in mod.buffers(recurse=False)
        ):
            return False
        if not isinstance(mod, _PARAM_FREE_OK):
            return False
    return linears == 1
