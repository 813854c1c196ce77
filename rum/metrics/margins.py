"""A cheaper check than the audit: how far the model's per-item margins are from retrained models'.

KLOM-style (the "KL divergence of margins" of unlearning benchmarks): for every
item, the distribution of its margin (true-label logit minus the largest other
logit) over a few models retrained without the forget set, against the
audited model's; their Kullback-Leibler divergence per item, summarised per
set. With a handful of retrained models each distribution is a Gaussian with a
spread pooled over items. Retrained models measured against each other give
the floor a perfect unlearner would reach.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rum._data import as_data
from rum._model import check_fits_model, check_model
from rum._records import jsonable, table
from rum._runtime.predict import predict_logits
from rum.exceptions import InvalidParameterError
from rum.metrics.membership import fit_gaussians, gaussian_kl, margins

__all__ = ["margin_kl", "MarginKL", "margin_kl_from_margins"]


def _models(obj: Any, name: str) -> list[torch.nn.Module]:
    items = list(obj) if isinstance(obj, (list, tuple)) else [obj]
    out = []
    for i, m in enumerate(items):
        if not isinstance(m, torch.nn.Module) and isinstance(getattr(m, "model", None), torch.nn.Module):
            m = m.model
        out.append(check_model(m, f"{name}[{i}]" if len(items) > 1 else name))
    return out


def _gauss(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-item mean and pooled spread of ``(models, items)`` margins."""
    mask = np.ones(values.shape, dtype=bool)
    mu, sd, _, _ = fit_gaussians(values, mask, np.zeros_like(mask), "global")
    return mu, sd


def margin_kl_from_margins(audited: Any, references: Any) -> tuple[np.ndarray, float]:
    """Per-item KL of the audited models' margins from the references', and the references' floor.

    Args:
        audited: ``(models, items)`` margins of the audited model(s); with one
            model its spread is taken to be the references'.
        references: ``(models, items)`` margins of at least two retrained models.

    Returns:
        ``(kl per item, floor)``: the floor is the mean per-item KL of each
        reference against the others (NaN with fewer than three references).

    Examples:
        >>> ref = np.array([[1.0, 2.0], [1.2, 2.2], [0.8, 1.8]])
        >>> kl, floor = margin_kl_from_margins(ref[:1] + 1.0, ref)
        >>> kl.round(2).tolist(), round(floor, 2)
        ([12.5, 12.5], 1.5)
    """
    a = np.atleast_2d(np.asarray(audited, dtype=np.float64))
    r = np.atleast_2d(np.asarray(references, dtype=np.float64))
    if len(r) < 2:
        raise InvalidParameterError("the margin check needs at least two retrained models.")
    if a.shape[1] != r.shape[1]:
        raise InvalidParameterError(f"audited and reference margins cover {a.shape[1]} and {r.shape[1]} items.")
    mu_r, sd_r = _gauss(r)
    if len(a) == 1:
        mu_a, sd_a = a[0], sd_r
    else:
        mu_a, sd_a = _gauss(a)
    kl = gaussian_kl(mu_a, sd_a, mu_r, sd_r)
    floor = np.nan
    if len(r) >= 3:
        floors = []
        for i in range(len(r)):
            mu_o, sd_o = _gauss(np.delete(r, i, axis=0))
            floors.append(gaussian_kl(r[i], sd_o, mu_o, sd_o).mean())
        floor = float(np.mean(floors))
    return kl, floor


@dataclass(frozen=True, eq=False)
class MarginKL:
    """Per-item KL divergence of an audited model's margins from retrained models', per set.

    Attributes:
        kl: per set name (``"forget"``, and ``"retain"``, ``"test"`` when
            given), the KL of every item (nats, in the set's order).
        floor: per set, the mean KL of one retrained model against the others
            (what a perfect unlearner would score; NaN with two references).
        n_models, n_references: how many audited and retrained models.

    Examples:
        >>> import numpy as np
        >>> r = MarginKL({"forget": np.array([0.1, 2.0])}, {"forget": 0.2}, 1, 3)
        >>> round(r.summary["forget"]["mean"], 2), r.summary["forget"]["floor"]
        (1.05, 0.2)
    """

    kl: dict
    floor: dict
    n_models: int
    n_references: int
    summary: dict = field(init=False)

    def __post_init__(self) -> None:
        summ = {}
        for name, v in self.kl.items():
            v = np.asarray(v, dtype=np.float64)
            summ[name] = {
                "mean": float(v.mean()), "median": float(np.median(v)),
                "p95": float(np.quantile(v, 0.95)), "floor": float(self.floor.get(name, np.nan)),
            }
        object.__setattr__(self, "summary", summ)

    def __str__(self) -> str:
        rows = [(k, s["mean"], s["median"], s["p95"], s["floor"]) for k, s in self.summary.items()]
        return table(
            ["set", "mean KL", "median", "95th pct", "retrain floor"], rows,
            f"Margin KL against {self.n_references} retrained models ({self.n_models} audited)",
        )

    def to_dict(self) -> dict:
        return {"kl": jsonable(self.kl), "floor": jsonable(self.floor), "n_models": self.n_models,
                "n_references": self.n_references}


def margin_kl(
    model: Any,
    forget_set: Any,
    references: Sequence[Any],
    *,
    retain_set: Any = None,
    test_set: Any = None,
) -> MarginKL:
    """KL divergence between the per-item margins of the model and of a few retrained models.

    A cheap relative of the audit: no shadow models, only the retrained
    models you have (two at least, three for the floor; each costs one
    training run). Each item's margin over the retrained models is a Gaussian
    with a spread pooled over the set's items; so is the audited model's, its
    spread taken from the references when it is one model. A model that
    forgot like a retrain scores about the floor on the forget set; large
    values on retain or test items mean unlearning moved what it should have kept.

    Args:
        model: the audited model, or several (the same method from other seeds).
        forget_set: the forgotten items.
        references: models retrained without the forget set (from different
            seeds), or their :class:`~rum.UnlearnResult`.
        retain_set: the retained training data, to compare on too (optional).
        test_set: held-out data, to compare on too (optional).

    Returns:
        MarginKL: per-item divergences and a summary per set.

    Examples:
        >>> import rum
        >>> res = rum.metrics.margin_kl(model, forget, [retrain_a, retrain_b, retrain_c])  # doctest: +SKIP
        >>> print(res)  # doctest: +SKIP
    """
    audited = _models(model, "model")
    refs = _models(references, "references")
    if len(refs) < 2:
        raise InvalidParameterError(
            "references must hold at least two retrained models (from different seeds); the "
            "spread of their margins is the yardstick."
        )
    sets = {"forget": as_data(forget_set, "forget_set")}
    if retain_set is not None:
        sets["retain"] = as_data(retain_set, "retain_set")
    if test_set is not None:
        sets["test"] = as_data(test_set, "test_set")
    named = {f"{k}_set": v for k, v in sets.items()}
    for m in audited + refs:
        check_fits_model(m, named)
    kl, floor = {}, {}
    for name, data in sets.items():
        am = np.stack([margins(predict_logits(m, data.X), data.y) for m in audited])
        rm = np.stack([margins(predict_logits(m, data.X), data.y) for m in refs])
        kl[name], floor[name] = margin_kl_from_margins(am, rm)
    return MarginKL(kl, floor, len(audited), len(refs))
