"""Penultimate-layer embeddings, taken with a forward hook that is always removed."""

from __future__ import annotations

import torch

from rum.exceptions import InvalidParameterError

__all__ = ["embed", "find_embedding_layer"]


def find_embedding_layer(model: torch.nn.Module) -> torch.nn.Module:
    """The model's last ``nn.Linear``: its input is the penultimate representation."""
    last = None
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            last = module
    if last is None:
        names = [n for n, _ in model.named_modules() if n][:20]
        raise InvalidParameterError(
            "model has no nn.Linear layer to take embeddings from; name a module with "
            f"embedding_layer=... Candidate modules: {', '.join(names) or 'none'}."
        )
    return last


@torch.no_grad()
def embed(
    model: torch.nn.Module,
    X: torch.Tensor,
    *,
    layer: torch.nn.Module | None = None,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Inputs of ``layer`` (default: the last ``nn.Linear``) for every row of ``X``, on the CPU.

    The model runs in eval mode (restored afterwards) and the hook is removed
    even when the forward pass raises.
    """
    from rum.data import model_device, model_dtype

    layer = layer or find_embedding_layer(model)
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_pre_hook(lambda m, inp: captured.append(inp[0].detach().flatten(1)))
    was_training = model.training
    model.eval()
    device, dtype = model_device(model), model_dtype(model)
    out = []
    try:
        for start in range(0, len(X), batch_size):
            captured.clear()
            model(X[start : start + batch_size].to(device=device, dtype=dtype))
            out.append(captured[-1].float().cpu())
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 0)
