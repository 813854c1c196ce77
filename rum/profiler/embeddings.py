"""Penultimate-layer embeddings, captured with a forward hook and streamed over batches.

The embedding of an item is, by default, the **input of the model's last**
``nn.Linear`` **module** (in registration order), i.e. the penultimate-layer
features a linear classification head sees. A user may instead name any
module (``"backbone.avgpool"``) or pass the module itself; its **output** is
then the embedding (flattened per item), as in the RUM paper's hook on
``avgpool``.

:class:`EmbeddingCapture` is a context manager: on entry it forces eval mode
and registers the hook; on exit, even after an exception, it removes the hook
and restores the model's train/eval mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from rum._data import TensorData, move
from rum._model import forward, model_device, model_dtype, module_modes, pick_logits, restore_modes
from rum._validation import did_you_mean
from rum.exceptions import EmbeddingLayerError

__all__ = ["find_embedding_layer", "EmbeddingCapture", "iter_embeddings"]


def _candidates(model: nn.Module, limit: int = 12) -> str:
    names = [n for n, m in model.named_modules() if n and not list(m.children())]
    if not names:
        names = [n for n, _ in model.named_modules() if n]
    shown = ", ".join(repr(n) for n in names[:limit])
    more = f" (and {len(names) - limit} more)" if len(names) > limit else ""
    return (shown or "none") + more


def find_embedding_layer(model: nn.Module, layer: Any = "auto") -> tuple[str, nn.Module, str]:
    """Find the module whose activations are the embedding.

    Args:
        model: the classifier.
        layer: ``"auto"`` (the input of the last ``nn.Linear``), the name of a
            sub-module as in ``model.named_modules()``, or a sub-module itself
            (its output is used).

    Returns:
        ``(name, module, side)`` where ``side`` is ``"input"`` or ``"output"``.

    Raises:
        EmbeddingLayerError: no ``nn.Linear`` exists (for ``"auto"``), or the
            named module is not part of ``model``; the message lists candidates.

    Examples:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        >>> find_embedding_layer(net)[0], find_embedding_layer(net)[2]
        ('2', 'input')
    """
    if isinstance(layer, str) and layer == "auto":
        last = None
        for name, mod in model.named_modules():
            if isinstance(mod, nn.Linear):
                last = (name, mod)
        if last is None:
            raise EmbeddingLayerError(
                "embedding_layer='auto' found no nn.Linear module in the model, so the "
                "penultimate layer is unknown. Name the module whose output is the embedding, "
                f"e.g. embedding_layer='avgpool'. Candidate modules: {_candidates(model)}."
            )
        return last[0], last[1], "input"
    if isinstance(layer, nn.Module):
        for name, mod in model.named_modules():
            if mod is layer:
                return name, mod, "output"
        raise EmbeddingLayerError(
            "embedding_layer is a module that is not part of the model. Pass one of its "
            f"sub-modules or its name. Candidate modules: {_candidates(model)}."
        )
    if isinstance(layer, str):
        modules = dict(model.named_modules())
        if layer in modules and layer:
            return layer, modules[layer], "output"
        names = [n for n in modules if n]
        raise EmbeddingLayerError(
            f"embedding_layer={layer!r} is not a module of the model.{did_you_mean(layer, names)} "
            f"Candidate modules: {_candidates(model)}."
        )
    raise EmbeddingLayerError(
        "embedding_layer must be 'auto', a module name or an nn.Module, got "
        f"{type(layer).__name__}."
    )


class EmbeddingCapture:
    """Capture embeddings during forward passes (a context manager).

    Inside the ``with`` block the model is in eval mode and every forward pass
    stores the batch's embedding in :attr:`last`. On exit the hook is removed
    and the previous train/eval mode restored, whatever happened inside.

    Examples:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        >>> with EmbeddingCapture(net) as cap:
        ...     emb, logits = cap(torch.zeros(5, 4))
        >>> tuple(emb.shape), len(net[2]._forward_pre_hooks)
        ((5, 8), 0)
    """

    def __init__(self, model: nn.Module, layer: Any = "auto"):
        self.model = model
        self.name, self.module, self.side = find_embedding_layer(model, layer)
        self.last: torch.Tensor | None = None
        self._handle = None
        self._modes: list[bool] | None = None

    def _pre_hook(self, module: nn.Module, args: tuple) -> None:
        self.last = args[0].detach()

    def _post_hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        out = output[0] if isinstance(output, (tuple, list)) else output
        self.last = out.detach()

    def __enter__(self) -> EmbeddingCapture:
        self._modes = module_modes(self.model)
        self.model.eval()
        try:
            if self.side == "input":
                self._handle = self.module.register_forward_pre_hook(self._pre_hook)
            else:
                self._handle = self.module.register_forward_hook(self._post_hook)
        except BaseException:
            restore_modes(self.model, self._modes)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if self._modes is not None:
            restore_modes(self.model, self._modes)
        self.last = None

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward one batch; return ``(embeddings, logits)`` as float32 CPU tensors."""
        if self._handle is None:
            raise RuntimeError("EmbeddingCapture must be used inside a 'with' block.")
        self.last = None
        out = pick_logits(forward(self.model, move(x, model_device(self.model), model_dtype(self.model))))
        if self.last is None:
            raise EmbeddingLayerError(
                f"the embedding layer {self.name!r} was not called during the forward pass. "
                f"Name a module the model uses. Candidate modules: {_candidates(self.model)}."
            )
        emb = self.last.reshape(len(x), -1).float().cpu()
        return emb, out.detach().float().cpu()


def iter_embeddings(
    capture: EmbeddingCapture, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(embeddings, logits, labels)`` per batch; nothing is accumulated."""
    for xb, yb in batches:
        emb, logits = capture(xb)
        yield emb, logits, yb.cpu()


def embed(
    model: nn.Module, data: TensorData, layer: Any = "auto", batch_size: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """All embeddings and logits of ``data`` (materialised; for small sets and tests)."""
    embs, logits = [], []
    with EmbeddingCapture(model, layer) as cap:
        for e, lo, _ in iter_embeddings(cap, data.batches(batch_size)):
            embs.append(e)
            logits.append(lo)
    if not embs:
        return torch.empty(0, 0), torch.empty(0, 0)
    return torch.cat(embs), torch.cat(logits)
