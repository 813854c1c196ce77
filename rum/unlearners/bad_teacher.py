"""Bad Teacher: distil from the original model on retain items and from an incompetent one on forget items."""

from __future__ import annotations

import copy

import torch

from rum._data import batch_count
from rum._runtime.optim import OPTIM_CONSTRAINTS, logits, make_optimizer, mixes_batch, optimise
from rum._validation import Interval, Options
from rum.exceptions import InvalidParameterError
from rum.unlearners._distillation import distillation_kl
from rum.unlearners._training import index_batches, reinitialise, retain_sample_size
from rum.unlearners.base import Unlearner, UnlearnerTags
from rum.unlearners.registry import register_unlearner

__all__ = ["BadTeacher", "frozen_copy", "teacher_targets"]


def frozen_copy(model: torch.nn.Module, *, reinitialised: bool = False) -> torch.nn.Module:
    """A copy of ``model`` in eval mode with gradients off (re-initialised when asked).

    Re-initialisation calls every module's ``reset_parameters`` and draws from
    torch's global generator (which the step runner seeds for each step).
    """
    teacher = copy.deepcopy(model)
    if reinitialised:
        stuck = reinitialise(teacher)
        if stuck:
            raise InvalidParameterError(
                "BadTeacher cannot re-initialise these modules for its incompetent teacher (no "
                f"reset_parameters): {', '.join(stuck)}. Pass bad_teacher='uniform' (a teacher "
                "that predicts every class with equal probability)."
            )
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


@torch.no_grad()
def teacher_targets(teacher: torch.nn.Module | None, X: torch.Tensor, n_classes: int,
                    batch_size: int = 1024) -> torch.Tensor:
    """The logits of a frozen ``teacher`` on every row of ``X``; zeros (a uniform
    prediction) when ``teacher`` is ``None``.

    Examples:
        >>> import torch
        >>> teacher_targets(None, torch.zeros(3, 4), n_classes=2).tolist()
        [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    """
    if teacher is None:
        return torch.zeros(len(X), n_classes, device=X.device, dtype=X.dtype
                           if X.is_floating_point() else torch.float32)
    if len(X) == 0:
        return torch.zeros(0, n_classes, device=X.device)
    return torch.cat([logits(teacher, X[s : s + batch_size]) for s in range(0, len(X), batch_size)])


@register_unlearner("bad-teacher")
class BadTeacher(Unlearner):
    """Distil from the original model on retain items and from an incompetent teacher on forget items.

    Two frozen teachers: the *competent* one is the model as given, the
    *incompetent* one the same architecture randomly re-initialised. Each
    epoch the student (the model) is trained on the forget items together with
    ``retain_ratio`` times as many retain items, drawn afresh, to match the
    incompetent teacher's predictions on the forget items and the competent
    teacher's on the retain items: the loss is ``T^2 KL_T(teacher || student)``
    at temperature ``T`` averaged over the mixed batch (Chundawat, Tarun,
    Mandal and Kankanhalli, "Can Bad Teaching Induce Forgetting? Unlearning
    in Deep Networks Using an Incompetent Teacher", AAAI 2023).

    Args:
        epochs: passes over the forget items and their retain sample, an
            int >= 1. Default 10 (the paper runs 1 epoch on CIFAR, 72 steps with
            a class forgotten; a small forget set makes far fewer steps per
            epoch). With 3 epochs it did real work in 6 of 9 cells of
            ``benchmarks/defaults_check.py``, with 10 (batch 32) in 17 of 18.
        lr: learning rate, > 0, or ``"auto"`` (default): calibrated with a short probe
            on the data at hand, starting from the reference rate 1e-3 (the paper: 1e-4 with Adam on a
            pretrained ResNet, which did real work in 1 of those 9 cells).
        batch_size: mini-batch size of the mixed set, an int >= 1. Default 32
            (the paper: 256).
        retain_ratio: retain items drawn each epoch, as a multiple of the
            forget-set size, >= 0 (all of them when the retain set is
            smaller). Default 3.0 (the paper samples 30 % of the retain set, 2.7
            times a CIFAR-10 class).
        temperature: distillation temperature ``T`` > 0. Default 1.0, as in the paper.
        bad_teacher: the incompetent teacher: ``"random-init"`` (default, the
            paper's: the architecture re-initialised with ``reset_parameters``)
            or ``"uniform"`` (every class equally likely; for models with
            modules that cannot be re-initialised).
        optimizer: ``"adam"`` (default, as in the paper) or ``"sgd"``.
        momentum: SGD momentum in [0, 1). Default 0.9.
        weight_decay: L2 penalty >= 0. Default 0.0, as in the paper.

    Examples:
        >>> import rum
        >>> rum.get_unlearner("bad-teacher")(epochs=1, lr=1e-4)
        BadTeacher(epochs=1, lr=0.0001)
    """

    tags = UnlearnerTags(
        requires_retain=False, cost="low", source="Chundawat et al., AAAI 2023",
        suits=("class-wise", "sub-class", "random"),
    )
    reference_lr = 1e-3
    _parameter_constraints = {
        **OPTIM_CONSTRAINTS,
        "retain_ratio": [Interval(float, 0, None)],
        "temperature": [Interval(float, 0, None, closed="neither")],
        "bad_teacher": [Options(("random-init", "uniform"))],
    }

    def __init__(
        self,
        epochs: int = 10,
        lr: float | str = "auto",
        batch_size: int = 32,
        retain_ratio: float = 3.0,
        temperature: float = 1.0,
        bad_teacher: str = "random-init",
        optimizer: str = "adam",
        momentum: float = 0.9,
        weight_decay: float = 0.0,
    ):
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.retain_ratio = retain_ratio
        self.temperature = temperature
        self.bad_teacher = bad_teacher
        self.optimizer = optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay

    def _unlearn(self, model, forget, retain, ctx):
        good = frozen_copy(model)
        bad = frozen_copy(model, reinitialised=True) if self.bad_teacher == "random-init" else None
        forget_targets = teacher_targets(bad, forget.X, ctx.n_classes)
        opt = make_optimizer(model, self.optimizer, self.resolved_lr(), self.momentum, self.weight_decay)
        n_retain = retain_sample_size(len(forget), retain, self.retain_ratio)
        ctx.start(self.epochs * batch_count(len(forget) + n_retain, self.batch_size))
        single = mixes_batch(model)
        model.train()
        for _ in range(self.epochs):
            data, targets = forget, forget_targets
            if n_retain:
                pick = torch.randperm(len(retain), generator=ctx.generator)[:n_retain]
                sample = retain.subset(pick.to(retain.device))
                data = forget.concat(sample)
                targets = torch.cat([forget_targets, teacher_targets(good, sample.X, ctx.n_classes)
                                     .to(forget_targets.dtype)])
            for idx in index_batches(len(data), self.batch_size, ctx, no_singleton=single):
                idx = idx.to(data.device)
                loss = distillation_kl(logits(model, data.X[idx]), targets[idx], self.temperature)
                optimise(opt, loss, ctx)
            if ctx.end_epoch(model):
                break
        return model

    def estimate_work(self, n_forget, n_retain):
        n = min(n_retain, round(self.retain_ratio * n_forget))
        # a teacher forward pass is about a third of a student step
        return float(self.epochs * (n_forget + n * 1.33) + 0.33 * n_forget)

    @classmethod
    def _test_params(cls):
        return {"epochs": 5}
