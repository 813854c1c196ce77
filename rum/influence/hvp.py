"""Parameters as one flat vector, per-batch losses of it, and Hessian-vector products.

Everything here works on a *flat* parameter vector ``theta`` holding a chosen
subset of the model's parameters (all of them, or the last layers). The other
parameters and the buffers stay fixed. Losses are evaluated with
``torch.func.functional_call``, gradients with ``torch.func.grad`` and
Hessian-vector products as forward-over-reverse ``torch.func.jvp(grad(f))``,
which costs about two backward passes and never forms the Hessian.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, jvp, vmap

from rum._model import pick_logits
from rum.exceptions import InvalidParameterError

__all__ = [
    "ParamSpace",
    "select_parameters",
    "batch_loss_fn",
    "hvp",
    "hvp_many",
]


def select_parameters(model: torch.nn.Module, parameters: Any = None) -> list[str]:
    """Names of the parameters to update.

    Args:
        model: the model.
        parameters: ``None`` for every parameter that requires grad; an int
            ``k`` for those of the last ``k`` modules that own parameters (the
            "last layers"); or a list of parameter names.

    Examples:
        >>> import torch
        >>> m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> select_parameters(m, 1)
        ['2.weight', '2.bias']
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise InvalidParameterError("model has no parameter that requires grad; nothing to update.")
    if parameters is None:
        return [n for n, _ in named]
    if isinstance(parameters, int) and not isinstance(parameters, bool):
        owners = [
            name for name, mod in model.named_modules()
            if any(p.requires_grad for p in mod.parameters(recurse=False))
        ]
        if not 1 <= parameters <= len(owners):
            raise InvalidParameterError(
                f"parameters={parameters}: the model has {len(owners)} module(s) with parameters; "
                f"pass an int in [1, {len(owners)}] or None for all."
            )
        keep = set(owners[-parameters:])
        out = []
        for n, _ in named:
            owner = n.rsplit(".", 1)[0] if "." in n else ""
            if owner in keep:
                out.append(n)
        return out
    if isinstance(parameters, (list, tuple)) and all(isinstance(p, str) for p in parameters):
        known = {n for n, _ in named}
        bad = [p for p in parameters if p not in known]
        if bad or not parameters:
            raise InvalidParameterError(
                f"parameters names {bad or '[]'} are not trainable parameters of the model; "
                f"known: {sorted(known)[:8]}..."
            )
        return [n for n, _ in named if n in set(parameters)]
    raise InvalidParameterError(
        "parameters must be None (all), an int (the last k layers) or a list of parameter "
        f"names, got {type(parameters).__name__}."
    )


@dataclass(frozen=True)
class ParamSpace:
    """The map between a model's selected parameters and one flat vector.

    Attributes:
        names: the selected parameter names, in model order.
        shapes: their shapes.
    """

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]

    @classmethod
    def of(cls, model: torch.nn.Module, names: Sequence[str]) -> ParamSpace:
        params = dict(model.named_parameters())
        return cls(tuple(names), tuple(params[n].shape for n in names))

    @property
    def size(self) -> int:
        return sum(int(torch.Size(s).numel()) for s in self.shapes)

    def flatten(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([tensors[n].reshape(-1) for n in self.names])

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        sizes = [int(torch.Size(s).numel()) for s in self.shapes]
        parts = torch.split(theta, sizes)
        return {n: p.view(s) for n, p, s in zip(self.names, parts, self.shapes)}

    def read(self, model: torch.nn.Module) -> torch.Tensor:
        """The current values as a detached flat vector."""
        params = dict(model.named_parameters())
        return self.flatten({n: params[n].detach() for n in self.names}).clone()

    def write(self, model: torch.nn.Module, theta: torch.Tensor) -> None:
        """Copy ``theta`` into the model's parameters (in place)."""
        params = dict(model.named_parameters())
        with torch.no_grad():
            for n, t in self.unflatten(theta).items():
                params[n].copy_(t.to(params[n].dtype))

    def mask(self, names: Sequence[str] | None, dtype=torch.float32) -> torch.Tensor:
        """A 0/1 vector, 1 on the entries of the parameters in ``names`` (``None``: all)."""
        chosen = set(self.names if names is None else names)
        return torch.cat(
            [
                torch.full((int(torch.Size(s).numel()),), 1.0 if n in chosen else 0.0, dtype=dtype)
                for n, s in zip(self.names, self.shapes)
            ]
        )


def batch_loss_fn(
    model: torch.nn.Module,
    space: ParamSpace,
    fixed: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    weight: float = 1.0,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``f(theta) = weight * sum_i CE(model(x_i; theta), y_i)`` for one batch.

    ``fixed`` holds the parameters that are not in ``space`` and the buffers.
    The model must be in eval mode so that the function is deterministic.
    """

    def f(theta: torch.Tensor) -> torch.Tensor:
        out = pick_logits(functional_call(model, {**fixed, **space.unflatten(theta)}, (x,)))
        return weight * F.cross_entropy(out, y, reduction="sum")

    return f


def hvp(f: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The Hessian of ``f`` at ``theta`` times ``v`` (forward-over-reverse).

    Examples:
        >>> import torch
        >>> A = torch.tensor([[2., 1.], [1., 3.]])
        >>> hvp(lambda t: 0.5 * t @ A @ t, torch.zeros(2), torch.tensor([1., 0.])).tolist()
        [2.0, 1.0]
    """
    return jvp(grad(f), (theta,), (v,))[1]


def hvp_many(f: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """``hvp`` for every row of ``V`` at once (``vmap``); returns a ``(k, p)`` tensor."""
    return vmap(lambda v: hvp(f, theta, v))(V)
