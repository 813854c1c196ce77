"""Records produced by the executor."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rum._records import jsonable, load_json, save_json, table
from rum._runner import StepResult
from rum.planner._plan import Plan
from rum.profiler._profile import Profile

__all__ = ["StepResult", "UnlearnResult"]


@dataclass(frozen=True)
class UnlearnResult:
    """The outcome of :func:`rum.unlearn` or :func:`rum.execute`.

    Attributes:
        model: the unlearned copy (the caller's model is untouched).
        plan: the plan that was executed.
        profile: the forget-set profile the plan was made from.
        steps: one :class:`StepResult` per plan step.
        timings: seconds spent in ``profile``, ``plan``, ``execute`` and ``total``.
        metrics: accuracies of the model on the forget and retain sets before
            and after unlearning (fractions); with a search policy that reports
            it (``auto``) also ``forget_acc_target``, the forget accuracy its
            search aimed at (its estimate of what a retrained model gets right).
        seed: the seed used; pass it as ``random_state`` to repeat the run.
        device: the device the steps ran on.

    ``to_dict()`` leaves the model out (save it with ``torch.save(result.model.state_dict(), ...)``).

    Examples:
        >>> import numpy as np, torch, rum
        >>> X = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
        >>> y = (X[:, 0] > 0).astype(int)
        >>> net = rum.fit(torch.nn.Linear(4, 2), (X, y), epochs=5, device="cpu")
        >>> res = rum.unlearn(net, (X[:5], y[:5]), (X[5:], y[5:]), unlearner="finetune", epochs=1,
        ...                   random_state=0, progress=False)
        >>> res.steps[0].unlearner, res.steps[0].status, res.model is net
        ('finetune', 'ok', False)
        >>> rum.UnlearnResult.from_dict(res.to_dict()).plan == res.plan
        True
    """

    model: torch.nn.Module | None
    plan: Plan
    profile: Profile
    steps: tuple[StepResult, ...]
    timings: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    seed: int | None = None
    device: str = "cpu"

    @property
    def search(self):
        """With a search policy (``auto``), what its search aimed at and tried
        (:class:`~rum.planner.SearchReport`, kept on the plan: ``plan.search``;
        ``print(result.search)``); otherwise ``None``."""
        return self.plan.search

    @property
    def diverged(self) -> bool:
        """Whether any step was rolled back (its loss became NaN or infinite, or it collapsed).

        A step rescued by one of its fallbacks does not count.
        """
        return any(s.status in ("diverged", "collapsed") for s in self.steps)

    def __str__(self) -> str:
        rows = [
            [s.step, s.group, s.unlearner, s.n_items, s.iterations, s.final_loss, s.seconds, s.status]
            for s in self.steps
        ]
        t = self.timings
        title = (
            f"Unlearning result: {len(self.steps)} step(s) on {self.device}, seed {self.seed}, "
            f"{t.get('total', float('nan')):.2f}s total "
            f"(profile {t.get('profile', 0):.2f}s, plan {t.get('plan', 0):.2f}s, "
            f"execute {t.get('execute', 0):.2f}s)"
        )
        out = table(
            ["step", "group", "unlearner", "items", "iters", "last loss", "seconds", "status"],
            rows,
            title,
        )
        if self.metrics:
            out += "\n" + ", ".join(f"{k}={v:.4f}" for k, v in self.metrics.items())
        for s in self.steps:
            if s.message:
                out += f"\nstep {s.step}: {s.message}"
        if self.plan.reason:
            out += f"\nwhy this plan: {self.plan.reason}"
        if self.search is not None:
            out += f"\n{self.search.summary()} (result.search lists them)"
        return out

    def to_dict(self) -> dict:
        return {
            "plan": self.plan.to_dict(),
            "profile": self.profile.to_dict(),
            "steps": [s.to_dict() for s in self.steps],
            "timings": jsonable(self.timings),
            "metrics": jsonable(self.metrics),
            "seed": self.seed,
            "device": self.device,
        }

    @classmethod
    def from_dict(cls, d: dict, model: torch.nn.Module | None = None) -> UnlearnResult:
        return cls(
            model=model,
            plan=Plan.from_dict(d["plan"]),
            profile=Profile.from_dict(d["profile"]),
            steps=tuple(StepResult.from_dict(s) for s in d["steps"]),
            timings=dict(d.get("timings") or {}),
            metrics={k: (float("nan") if v is None else v) for k, v in (d.get("metrics") or {}).items()},
            seed=d.get("seed"),
            device=d.get("device", "cpu"),
        )

    def save(self, path: str | Path) -> Path:
        """Write everything but the model as JSON."""
        return save_json(self, path)

    @classmethod
    def load(cls, path: str | Path, model: Any = None) -> UnlearnResult:
        return cls.from_dict(load_json(path), model=model)
