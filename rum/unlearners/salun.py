"""SalUn: random-label unlearning restricted to the weights most salient for the forget set."""

from __future__ import annotations

import torch

from rum._data import TensorData
from rum._model import eval_mode
from rum._runtime.context import RunContext
from rum._runtime.optim import OPTIM_CONSTRAINTS, cross_entropy, logits, make_optimizer
from rum._validation import Interval
from rum.unlearners._training import relabelled_mix, retain_sample_size
from rum.unlearners.base import Unlearner, UnlearnerTags
from rum.unlearners.registry import register_unlearner

__all__ = ["SalUn", "forget_gradients", "saliency_mask"]


def forget_gradients(
    model: torch.nn.Module, forget: TensorData, batch_size: int
) -> dict[str, torch.Tensor]:
    """The gradient of the summed forget-set cross-entropy for each trainable parameter.

    One pass over ``forget`` in order, without changing the weights; the
    model's ``.grad`` fields are left as they were. Returns
    ``{parameter name: gradient}``.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    total = [torch.zeros_like(p) for p in params]
    for x, y in forget.batches(batch_size):
        loss = torch.nn.functional.cross_entropy(logits(model, x), y, reduction="sum")
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for acc, g in zip(total, grads, strict=True):
            if g is not None:
                acc.add_(g)
    return {n: g for (n, _), g in zip(named, total, strict=True)}


def saliency_mask(
    gradients: dict[str, torch.Tensor], ratio: float, *, largest: bool = True
) -> dict[str, torch.Tensor]:
    """A 0/1 mask per parameter keeping the ``ratio`` fraction of entries with the largest |gradient|.

    The threshold is global across all parameters. Ties at the threshold are
    broken by position, so exactly ``round(ratio * n)`` entries are kept.
    ``largest=False`` keeps the smallest entries instead (the polarity of the
    SalUn reference code; the paper keeps the largest).

    Examples:
        >>> import torch
        >>> m = saliency_mask({"w": torch.tensor([0.1, -3.0, 2.0, 0.0])}, 0.5)
        >>> m["w"].tolist()
        [0.0, 1.0, 1.0, 0.0]
    """
    names = list(gradients)
    flat = torch.cat([gradients[n].detach().abs().flatten().float().cpu() for n in names])
    n = flat.numel()
    k = int(round(ratio * n))
    keep = torch.zeros(n, dtype=torch.bool)
    if k > 0:
        order = torch.argsort(flat, descending=largest, stable=True)
        keep[order[:k]] = True
    masks, start = {}, 0
    for name in names:
        g = gradients[name]
        size = g.numel()
        masks[name] = keep[start : start + size].reshape(g.shape).to(device=g.device, dtype=g.dtype)
        start += size
    return masks


@register_unlearner("salun")
class SalUn(Unlearner):
    """Random-label unlearning that only updates the weights salient for the forget set.

    First the saliency of every weight is measured on the *original* model:
    the absolute gradient of the forget-set cross-entropy. The ``mask_ratio``
    fraction of weights with the **largest** saliency (one global threshold)
    are the only ones that may change. Then, as in random-label unlearning,
    each epoch gives every forget item a random wrong label and trains on
    them together with retain items; every gradient, including the weight
    decay term, is multiplied by the mask, so the other weights keep their
    values exactly (Fan et al., "SalUn: Empowering Machine Unlearning via
    Gradient-based Weight Saliency", ICLR 2024).

    The mask keeps the largest-saliency weights, as the paper describes. (The
    authors' code ranks in ascending order and so keeps the *least* salient
    weights; :func:`saliency_mask` offers both.) No SGD step is taken while
    the gradients for the mask are accumulated.

    Args:
        mask_ratio: fraction of weights allowed to change, in (0, 1].
            Default 0.5, the paper's main setting.
        epochs: passes over the relabelled forget items plus retain sample,
            an int >= 1. Default 5 (the paper uses 10 on CIFAR-10; 5 was
            better than 3 on the digits demo, seeds 0-2).
        lr: learning rate, > 0, or ``"auto"`` (default): calibrated with a short probe
            on the data at hand, starting from the reference rate 0.05, within the paper's CIFAR range
            (0.013-0.1) and best of {0.01, 0.02, 0.05} on the digits demo,
            seeds 0-2.
        batch_size: mini-batch size, an int >= 1. Default 32.
        retain_ratio: retain items drawn each epoch as a multiple of the
            forget-set size, >= 0 (all retain items when there are fewer).
            Default 4.0, as the ``random-label`` unlearner.
        optimizer: ``"sgd"`` (default, as in the paper) or ``"adam"``.
        momentum: SGD momentum in [0, 1). Default 0.9, as in the paper.
        weight_decay: L2 penalty >= 0, applied to salient weights only.
            Default 5e-4, as in the paper.

    Examples:
        >>> import rum
        >>> rum.get_unlearner("salun")(mask_ratio=0.3)
        SalUn(mask_ratio=0.3)
    """

    tags = UnlearnerTags(
        requires_retain=False, cost="low", source="Fan et al., ICLR 2024",
        suits=("class-wise", "random", "mixed"),
    )
    reference_lr = 0.05
    _parameter_constraints = {
        **OPTIM_CONSTRAINTS,
        "mask_ratio": [Interval(float, 0, 1, closed="right")],
        "retain_ratio": [Interval(float, 0, None)],
    }

    def __init__(
        self,
        mask_ratio: float = 0.5,
        epochs: int = 5,
        lr: float | str = "auto",
        batch_size: int = 32,
        retain_ratio: float = 4.0,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
    ):
        self.mask_ratio = mask_ratio
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.retain_ratio = retain_ratio
        self.optimizer = optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay

    def _unlearn(self, model, forget, retain, ctx: RunContext):
        # The mask comes from the model as it is given (the original model when
        # SalUn is a plan's first step), evaluated in eval mode.
        with eval_mode(model):
            masks_by_name = saliency_mask(
                forget_gradients(model, forget, self.batch_size), self.mask_ratio
            )
        named = dict(model.named_parameters())
        masks = {named[n]: m for n, m in masks_by_name.items()}

        # Weight decay is added to the gradient before masking, so the optimiser
        # itself must not decay: frozen weights stay exactly as they were.
        opt = make_optimizer(model, self.optimizer, self.resolved_lr(), self.momentum, 0.0)
        params = [p for g in opt.param_groups for p in g["params"]]
        n_retain = retain_sample_size(len(forget), retain, self.retain_ratio)
        ctx.start(self.epochs * max(1, -(-(len(forget) + n_retain) // self.batch_size)))
        model.train()
        for _ in range(self.epochs):
            mixed = relabelled_mix(forget, retain, n_retain, ctx)
            for x, y in mixed.batches(self.batch_size, shuffle=True, generator=ctx.generator):
                loss = cross_entropy(model, x, y)
                ctx.step(loss)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                with torch.no_grad():
                    for p in params:
                        if p.grad is None:
                            continue
                        if self.weight_decay:
                            p.grad.add_(p, alpha=self.weight_decay)
                        if p in masks:
                            p.grad.mul_(masks[p])
                opt.step()
            if ctx.end_epoch(model):
                break
        return model

    def estimate_work(self, n_forget, n_retain):
        mask = n_forget  # one gradient pass over the forget set for the saliency mask
        return float(mask + self.epochs * (n_forget + min(n_retain, round(self.retain_ratio * n_forget))))

    @classmethod
    def _test_params(cls):
        return {"epochs": 3, "lr": 0.03}
