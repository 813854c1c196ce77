"""Step-size calibration: the learning rate ``lr="auto"`` resolves to, chosen by a short probe.

The search itself is a pure function of a *probe*: ``probe(lr)`` runs a short
piece of the unlearner with learning rate ``lr`` on a copy of the model and
says how much of the model's retain skill it cost and how far it moved the
forget items. The step runner (:mod:`rum._runner`) builds the probe from the
unlearner at hand; this module only decides which learning rate to keep and
records why.

The rule, from the unlearner's reference learning rate ``r`` (its former
constant default):

1. probe ``r``; while a probe costs more than :data:`PROBE_BOUND` of the
   retain skill (or diverges), probe the next smaller rate of the grid
   ``r / 3, r / 9, ...`` (at most :data:`MAX_DOWN` steps down);
2. when ``r`` itself passes but left the forget items where they were (their
   accuracy fell by less than :data:`STILL`), probe ``3 r`` and keep it if it
   passes, and so on up to :data:`MAX_UP` steps: a step too small to move the
   forget set does no work;
3. keep the largest rate that passed; when none passed, the smallest probed
   (the back-off of :func:`rum.unlearn` may still shrink it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from rum._records import jsonable

__all__ = ["AUTO", "Calibration", "Probe", "calibrate_lr", "PROBE_BOUND", "STEP", "MAX_DOWN", "MAX_UP"]

#: The value of ``lr`` that asks for calibration.
AUTO = "auto"
#: A probe may cost at most this fraction of the model's retain skill (its accuracy
#: above the majority-class rate): half of what the retain guard allows by default. (0.1 was
#: too cautious: on three of the defaults check's models it did real work in 68 of 108 cells,
#: 0.25 in 72; benchmarks/NOTES.md.)
PROBE_BOUND = 0.25
#: Ratio between neighbouring rates of the grid.
STEP = 3.0
#: At most this many steps down from the reference rate (3**6 = 729 times smaller).
MAX_DOWN = 6
#: At most this many steps up (9 times larger).
MAX_UP = 2
#: A reference step whose forget accuracy fell by less than this is too small to do work, and a rate ``STEP`` times larger is probed.
STILL = 0.02


@dataclass(frozen=True)
class Probe:
    """One probed learning rate.

    Attributes:
        lr: the learning rate probed.
        retain_lost: the fraction of retain skill the probe cost (``nan``: it diverged).
        forget_drop: how much the forget items' accuracy fell (``nan``: it diverged).
        passed: whether ``retain_lost`` stayed within the bound.
    """

    lr: float
    retain_lost: float
    forget_drop: float
    passed: bool


@dataclass(frozen=True)
class Calibration:
    """What ``lr="auto"`` probed, chose, and why (``StepResult.calibration``).

    Attributes:
        reference: the unlearner's reference learning rate (where the search starts).
        probes: every probe, in the order run.
        chosen: the learning rate the step ran with.
        reason: one sentence saying why.
        bound: the retain-skill bound a probe had to stay within.
        seconds: time spent probing.
        items: ``(forget, retain, evaluation)`` items a probe used.

    Examples:
        >>> c = calibrate_lr(lambda lr: (0.0 if lr <= 0.02 else 0.5, 0.3), 0.1)
        >>> c.chosen, [p.lr for p in c.probes]
        (0.011111111111111112, [0.1, 0.03333333333333333, 0.011111111111111112])
        >>> Calibration.from_dict(c.to_dict()) == c
        True
    """

    reference: float
    probes: tuple[Probe, ...]
    chosen: float
    reason: str
    bound: float = PROBE_BOUND
    seconds: float = 0.0
    items: tuple[int, int, int] = (0, 0, 0)

    def to_dict(self) -> dict:
        d = jsonable({k: v for k, v in self.__dict__.items() if k != "probes"})
        d["probes"] = [jsonable(p.__dict__) for p in self.probes]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        d = dict(d)
        probes = tuple(Probe(**{k: (math.nan if v is None else v) for k, v in p.items()})
                       for p in d.pop("probes", ()))
        if "items" in d:
            d["items"] = tuple(d["items"])
        return cls(probes=probes, **d)

    def __str__(self) -> str:
        tried = ", ".join(f"{p.lr:.3g} ({'ok' if p.passed else 'too large'})" for p in self.probes)
        return f"lr={self.chosen:.3g}: {self.reason} Probed: {tried}."


def calibrate_lr(
    probe: Callable[[float], tuple[float, float] | None],
    reference: float,
    *,
    bound: float = PROBE_BOUND,
    step: float = STEP,
    max_down: int = MAX_DOWN,
    still: float = STILL,
    up: bool = True,
    max_up: int = MAX_UP,
) -> Calibration:
    """Choose a learning rate with ``probe`` (see the module's docstring for the rule).

    Args:
        probe: ``probe(lr) -> (retain skill lost, forget accuracy drop)``, or
            ``None`` when the probe diverged. Called at most ``max_down + 2`` times.
        reference: where the search starts.
        bound: the largest retain-skill loss a passing probe may cost.
        step: the grid's ratio.
        max_down: how many steps below ``reference`` the search may go.
        still: see :data:`STILL`.
        up: whether rule 2 may probe a rate above ``reference`` (the runner allows it
            only for unlearners that also train on retain data).
        max_up: at most this many steps above ``reference``.

    Returns:
        Calibration: the probes and the choice (``seconds`` is the probing time).
    """
    t0 = time.perf_counter()
    probes: list[Probe] = []

    def run(lr: float) -> Probe:
        out = probe(lr)
        lost, drop = (math.nan, math.nan) if out is None else (float(out[0]), float(out[1]))
        p = Probe(lr=lr, retain_lost=lost, forget_drop=drop,
                  passed=out is not None and math.isfinite(lost) and lost <= bound)
        probes.append(p)
        return p

    first = run(reference)
    if first.passed:
        best = first
        for _ in range(max_up if up else 0):
            # a step that leaves the forget items' accuracy where it was does no work
            if best.forget_drop >= still:
                break
            bigger = run(best.lr * step)
            if not bigger.passed:
                break
            best = bigger
        if best is not first:
            reason = (f"the reference lr {reference:.3g} left the forget items where they were; "
                      f"{best.lr / reference:.3g} times more cost {best.retain_lost:.0%} of the "
                      f"retain skill on the probe (bound {bound:.0%}).")
        else:
            reason = (f"the reference lr cost {first.retain_lost:.0%} of the retain skill on the "
                      f"probe (bound {bound:.0%}).")
        return _done(reference, probes, best.lr, reason, bound, t0)
    lr = reference
    for k in range(1, max_down + 1):
        lr = reference / step ** k
        p = run(lr)
        if p.passed:
            reason = (f"the largest lr of the grid {reference:.3g} / {step:g}^k whose probe cost "
                      f"at most {bound:.0%} of the retain skill ({p.retain_lost:.0%}; the "
                      f"reference cost {_pct(first.retain_lost)}).")
            return _done(reference, probes, lr, reason, bound, t0)
    reason = (f"no probed lr kept the retain skill within {bound:.0%}; the smallest "
              f"probed is used.")
    return _done(reference, probes, lr, reason, bound, t0)


def _pct(x: float) -> str:
    return "a divergence" if not math.isfinite(x) else f"{x:.0%}"


def _done(reference, probes, chosen, reason, bound, t0) -> Calibration:
    return Calibration(reference=float(reference), probes=tuple(probes), chosen=float(chosen),
                       reason=reason, bound=bound, seconds=time.perf_counter() - t0)
