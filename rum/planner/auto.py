"""The ``auto`` policy: choose each group's unlearner and length by an oracle-free target.

Nothing here needs the retrained model. Every forget item has a target, the
probability that a model which never saw it classifies it correctly
(:mod:`rum.planner._targets`). Groups are processed easiest first. For each group,
every candidate unlearner runs once from the current model, through the step runner
under the executor's retain guard; after each of its epochs the search scores

    J = sum over processed groups g of (n_g / n) * |accuracy on g - min(1, mean target on g)|
        + accuracy lost on the retain guard's slice (up to 1,024 retain items)

(:func:`~rum.planner._targets.calibration_error`, with ``n`` the processed forget
items) and keeps the best epoch. A trial stops early once :data:`AUTO_PATIENCE`
epochs in a row have not improved J, or once J is on target (:data:`AUTO_ON_TARGET`);
a stage where doing nothing already scores 0 is not searched. The candidate and epoch
count with the lowest J become the group's step if they beat doing nothing by more
than :data:`AUTO_MIN_GAIN`; otherwise the group gets no step. A last repair step over all groups follows; its
candidates are fallbacks, not rivals: the first that improves J is kept. Where no
group step was kept, candidates with an ``anchor`` are skipped (they would hold the
forget items at the original model's predictions).

The forget-set check of the profile (``profile.check``) comes first: a class-wise
forget set's classes are taken out of the output layer (``forget-class``) without a
search, and a forget set that the profiler's neighbour estimate and the target both
find already like held-out data keeps the model (one ``noop`` step, no trial).

With ``budget=`` the reference and each stage get an even share of the time left
(:func:`stage_deadline`), and a trial stops after the epoch it is running at its
stage's deadline, keeping its best epoch so far. Steps are seeded by their position
in the final plan and truncated to their best epoch, so :func:`rum.execute` (with the
same seed and ``retain_guard``) replays the plan to the searched model exactly, and
:func:`rum.unlearn` returns that model without replaying. The measurements behind the
defaults are in benchmarks/NOTES.md ("auto").
"""

from __future__ import annotations

import collections.abc as cabc
import copy
import dataclasses
import numbers
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rum._data import TensorData
from rum._runner import StepResult
from rum._runtime.guard import guard_slice
from rum._runtime.predict import accuracy_on, predict_logits
from rum._validation import NONE, Interval, validate_params
from rum.exceptions import InvalidParameterError
from rum.planner._plan import Plan, Step
from rum.planner._search import SearchReport, Trial
from rum.planner._targets import (
    calibration_error,
    holdout_indices,
    neighbour_targets,
    parse_target,
    reference_targets,
    target_accuracy,
)
from rum.planner.policies import (
    PlanningContext,
    SearchOutcome,
    SearchPolicy,
    as_unlearner,
    as_unlearners,
    class_step,
    is_pair,
    noop_step,
    register_policy,
)
from rum.profiler.memorization import N_NEIGHBORS
from rum.unlearners.base import Unlearner

__all__ = [
    "Auto",
    "AUTO_CANDIDATES",
    "AUTO_REPAIR",
    "AUTO_PATIENCE",
    "AUTO_MIN_GAIN",
    "AUTO_ON_TARGET",
    "BUDGET_CONSTRAINT",
    "stage_deadline",
]

#: Candidate unlearners tried on every group (each for up to ``epochs`` epochs).
#: (The learning rate is pinned to the constant it was measured with, not ``"auto"``.)
AUTO_CANDIDATES: tuple = (("random-label", {"epochs": 5, "lr": 0.01}),)
#: Candidates for the final repair step over the whole forget set, tried in order: the
#: first that improves the search score is kept. NegGrad+ repairs the retain set while
#: still pushing the forget items away; where it does not improve the score, a fine-tune
#: that holds the forget items' predictions where the group steps left them
#: (``anchor=1``), then a plain fine-tune.
AUTO_REPAIR: tuple = (
    ("neggrad+", {"epochs": 3, "optimizer": "adam", "lr": 1e-3, "alpha": 0.9, "forget_batch_size": 16}),
    ("finetune", {"epochs": 5, "optimizer": "adam", "lr": 1e-3, "anchor": 1.0}),
    ("finetune", {"epochs": 5, "optimizer": "adam", "lr": 1e-3}),
)
#: A trial stops once this many epochs in a row have not improved its best score.
AUTO_PATIENCE = 2
#: A group's candidate is kept only when it beats doing nothing by more than this: a
#: smaller gain is within the noise of the oracle-free target, and every step also moves
#: what the score does not see (test accuracy). Doing nothing is always a candidate.
AUTO_MIN_GAIN = 0.01
#: A trial whose score reaches this is on target: it stops, and no further candidate runs.
AUTO_ON_TARGET = 0.005
#: What ``budget=`` accepts: seconds above 0, or ``None`` (no limit).
BUDGET_CONSTRAINT = [Interval(float, 0, None, closed="neither"), NONE]

#: The clock behind ``budget=`` (a module attribute, so tests can drive it).
_clock = time.perf_counter


def stage_deadline(now: float, end: float | None, stages_left: int) -> float | None:
    """When a stage of a budgeted search must stop: ``now`` plus an even share of the time
    left until ``end`` among the ``stages_left`` stages still to run (this one included).

    A stage that finishes early leaves its unused time to the stages after it, so the
    last stage (the repair) gets whatever is left. ``end`` ``None`` means no budget.

    Examples:
        >>> stage_deadline(10.0, 18.0, 4), stage_deadline(10.0, 18.0, 1)
        (12.0, 18.0)
        >>> stage_deadline(20.0, 18.0, 2), stage_deadline(0.0, None, 3) is None
        (20.0, True)
    """
    if end is None:
        return None
    return now + max(0.0, end - now) / max(1, stages_left)


def _spec_list(value: Any, argument: str, example: str) -> tuple[Unlearner, ...]:
    """One spec or a list of specs as validated unlearners (an empty list is an error)."""
    specs = list(value) if isinstance(value, (list, tuple)) and not is_pair(value) else [value]
    if not specs:
        raise InvalidParameterError(
            f"{argument} is empty: give at least one unlearner to try, e.g. {example}."
        )
    return as_unlearners(specs, argument)


@register_policy("auto")
class Auto(SearchPolicy):
    """Search each group's unlearner and length against an oracle-free target.

    Args:
        candidates: the unlearners to try on every group (one spec or a list:
            names, classes, instances or ``(name, params)`` pairs); ``None``:
            :data:`AUTO_CANDIDATES`.
        repair: the candidates for the last step over the whole forget set, in
            order of preference (the first that improves the score is kept);
            ``None``: :data:`AUTO_REPAIR`; an empty list searches no repair step.
        target: what each group's forget accuracy is aimed at. ``None`` (default,
            :data:`~rum.planner._targets.AUTO_TARGET`): what a two-epoch retrain
            on the retain set gets right, rescaled to a full model's accuracy;
            an exact unlearner with your recipe (``("retrain", {"epochs": 3,
            "lr": 0.01})``); or ``"neighbors"``: the label agreement of each
            item's nearest retain items in the model's embedding (no training;
            the default falls back to it for models ``retrain`` cannot
            re-initialise).
        budget: the search's time limit in seconds, the reference included
            (``None``: none). Each stage gets an even share of the time left; a
            trial stops after the epoch running at its stage's deadline and keeps
            its best epoch so far. ``plan.search`` says which stages it cut short.

    The search runs under the call's ``retain_guard``; give :func:`rum.execute`
    the same value (and seed) and it replays the plan to the searched model.

    Examples:
        >>> from rum.policies import Auto
        >>> Auto(candidates=["random-label", ("scrub", {"epochs": 3})], budget=30)
        Auto(candidates=['random-label', ('scrub', {'epochs': 3})], budget=30)
        >>> Auto(budget=-1)
        Traceback (most recent call last):
        ...
        rum.exceptions.InvalidParameterError: The 'budget' parameter of Auto must be a float in (0, inf) or None. Got -1 instead.
    """

    def __init__(self, candidates: Any = None, repair: Any = None, target: Any = None,
                 budget: float | None = None):
        self.candidates = candidates
        self.repair = repair
        self.target = target
        self.budget = budget
        validate_params({"budget": budget}, {"budget": BUDGET_CONSTRAINT}, "Auto")
        self._candidates()
        self._repair()
        parse_target(target)  # checked now, before any data is touched

    def _candidates(self) -> tuple[Unlearner, ...]:
        if self.candidates is None:
            return as_unlearners(AUTO_CANDIDATES, "AUTO_CANDIDATES")
        if isinstance(self.candidates, cabc.Mapping):
            raise InvalidParameterError(
                "candidates is a list of unlearners to try on every group (auto chooses per "
                "group itself), e.g. ['random-label', 'scrub']; for a fixed per-group choice use "
                "the RUM or Mapping policy."
            )
        return _spec_list(self.candidates, "candidates", "['random-label', 'scrub']")

    def _repair(self) -> tuple[Unlearner, ...]:
        if self.repair is None:
            return as_unlearners(AUTO_REPAIR, "AUTO_REPAIR")
        if isinstance(self.repair, (list, tuple)) and not is_pair(self.repair) and not self.repair:
            return ()
        return _spec_list(self.repair, "repair", "['finetune'], or [] to search no repair step")

    def search(self, ctx: PlanningContext) -> SearchOutcome:
        if ctx.retain is None:
            raise InvalidParameterError("policy 'auto' needs retain_set (the rest of the training data).")
        return SearchOutcome(*_Search(self, ctx).run())


class _SearchBar:
    """The search's progress bar: a tick per stage (the reference, each group, the repair),
    the candidate running and its last epoch's score; nothing at all when ``show`` is false."""

    def __init__(self, show: bool, total: int, end: float | None):
        self.bar, self.end = None, end
        if show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="auto search", unit="stage", leave=True)

    def trial(self, stage: str, name: str) -> None:
        if self.bar is not None:
            self.bar.set_description(f"auto search: {stage}, {name}")

    def epoch(self, epoch: int, score: float) -> None:
        if self.bar is not None:
            post = {"epoch": epoch, "score": f"{score:.4f}"}
            if self.end is not None:
                post["budget left"] = f"{max(0.0, self.end - _clock()):.1f}s"
            self.bar.set_postfix(post)

    def stage_done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.set_description("auto search")
            self.bar.set_postfix_str("")
            self.bar.close()


class _Scorer:
    """The search score of a model: its processed groups' distance from their targets
    plus the accuracy it lost on ``retain_slice``, the retain guard's slice."""

    def __init__(self, model: torch.nn.Module, forget: TensorData, targets: np.ndarray,
                 groups: np.ndarray, retain_slice: TensorData):
        self.forget, self.targets, self.groups = forget, targets, groups
        self.retain_slice = retain_slice
        self.retain_before = accuracy_on(model, retain_slice)

    def __call__(self, model: torch.nn.Module, done: Sequence[int],
                 retain_acc: float | None = None) -> float:
        """``retain_acc``: the model's accuracy on the slice, when already measured."""
        mask = np.isin(self.groups, list(done))
        logits = predict_logits(model, self.forget.X[torch.as_tensor(mask)])
        correct = (logits.argmax(1) == self.forget.y[torch.as_tensor(mask)].cpu()).float().numpy()
        err = calibration_error(correct, self.targets[mask], self.groups[mask])
        if retain_acc is None:
            retain_acc = accuracy_on(model, self.retain_slice)
        return float(err + max(0.0, self.retain_before - retain_acc))


def _anchored(u: Unlearner) -> bool:
    """Whether ``u`` holds the forget items' predictions where it found them."""
    anchor = u.get_params().get("anchor")
    return isinstance(anchor, numbers.Real) and not isinstance(anchor, bool) and anchor > 0


def _trial(ctx: PlanningContext, u: Unlearner, model, forget_i, seed: int, score_fn, guard,
           deadline: float | None = None, on_score=None) -> dict:
    """Run ``u`` on a copy of ``model``; return its best epoch's score, epochs, state, effort.

    The trial runs through the step runner under the executor's retain guard: an
    epoch count the guard would undo is never kept, and the trial stops where the
    executor would stop the step, so that the plan replays to the searched model.
    Past ``deadline`` (a ``_clock`` time) it stops after the epoch that is running and
    keeps its best epoch so far (``"cut": True`` when it would have gone on).
    ``on_score(epoch, score)`` is called after each scored epoch (the progress bar).
    """
    best = {"score": np.inf, "epochs": 0, "state": None, "iterations": 0, "loss": None,
            "cut": False}
    trend = {"score": np.inf, "epochs": 0}  # the best score of any epoch, kept or not
    t0 = time.perf_counter()
    guarded = guard is not None and guard.data is not None and not u.tags.exact

    def snapshot(s: float, epochs: int, m: torch.nn.Module, iterations: int, loss) -> None:
        best.update(score=s, epochs=epochs, iterations=iterations, loss=loss,
                    seconds=time.perf_counter() - t0,
                    state={k: v.detach().clone() for k, v in m.state_dict().items()})

    def on_epoch(epoch: int, m: torch.nn.Module, run_ctx) -> bool:
        # called after the guard has seen this epoch and let it through
        if u.truncated(epoch) is not None:  # else this epoch count cannot be replayed exactly
            s = score_fn(m, guard.last if guarded else None)  # the guard measured the same slice
            if on_score is not None:
                on_score(epoch, s)
            if s < trend["score"] - 1e-9:
                trend.update(score=s, epochs=epoch)
            # a step of this length that the guard would undo is not kept, but its score still
            # counts as progress: a step can dip below the guard's limit and climb back
            if s < best["score"] - 1e-9 and not (guarded and guard.hit):
                snapshot(s, epoch, m, run_ctx.iterations, run_ctx.last_loss)
            # later epochs cannot change the first ones, so stopping keeps the replay exact
            if epoch - trend["epochs"] >= AUTO_PATIENCE or best["score"] <= AUTO_ON_TARGET:
                return True
        if deadline is not None and _clock() >= deadline:
            best["cut"] = epoch < u.get_params().get("epochs", epoch + 1)
            return True
        return False

    run = ctx.run(u, copy.deepcopy(model), forget_i, ctx.retain, seed=seed, guard=guard,
                  on_epoch=on_epoch)
    if run.epochs == 0 and run.status == "ok":  # not epoch-based: score the end result
        s = score_fn(run.model, guard.last if guarded else None)
        if s < best["score"]:
            snapshot(s, -1, run.model, run.iterations, run.loss)
    # the unlearner as it ran (lr="auto" resolved): the plan records its truncation, whose
    # replay must not calibrate again for a shorter run
    best["unlearner"] = run.unlearner if run.unlearner is not None else u
    return best


class _Search:
    """One search of :class:`Auto` on a planning context (the state of its stages)."""

    def __init__(self, policy: Auto, ctx: PlanningContext, holdout: float = 0.1, k: int = 20):
        self.ctx, self.holdout, self.k = ctx, holdout, k
        self.candidates, self.repair = policy._candidates(), policy._repair()
        self.target = parse_target(policy.target, ctx.model, len(ctx.retain))
        self.budget, self.label = policy.budget, policy.label

    def run(self) -> tuple[Plan, torch.nn.Module, tuple[StepResult, ...]]:
        ctx, profile = self.ctx, self.ctx.profile
        model = copy.deepcopy(ctx.model)  # the context's model stays as it was
        forget, retain, seed = ctx.forget, ctx.retain, ctx.seed
        candidates, repair = self.candidates, self.repair
        t0 = time.perf_counter()
        end = None if self.budget is None else _clock() + self.budget
        groups = [s.group for s in profile.summary]
        steps: list[Step] = []
        results: list[StepResult] = []
        check, reason = profile.check, ""
        if check is not None and check.kind == "class-wise":
            # the classes' items are taken out of the output layer first (no search: a model
            # that never saw a class does not predict it); the rest, if any, is searched
            reason = check.reason
            self._class_step(model, check, steps, results)
            if check.class_items == len(profile):
                report = SearchReport((), "class-wise", {}, 0.0, time.perf_counter() - t0)
                plan = Plan(tuple(steps), policy=self.label, n_forget=len(profile), search=report,
                            reason=reason)
                return plan, model, tuple(results)
        stages_left = len(groups) + (1 if repair else 0)  # each gets a share of what is left
        val_idx = holdout_indices(len(retain), seed, self.holdout)
        targets, target_info = None, {"target": "neighbors"}
        with_reference = self.target is not None and len(retain) > len(val_idx)
        bar = _SearchBar(ctx.progress, stages_left + int(with_reference), end)
        if with_reference:
            bar.trial("reference", repr(self.target))
            targets, ref_info = reference_targets(
                self.target, model, forget, retain, val_idx, device=ctx.device, seed=seed,
                n_classes=ctx.n_classes, k=self.k,
                deadline=stage_deadline(_clock(), end, stages_left + 1), clock=_clock)
            target_info = {"target": "neighbors" if targets is None else repr(self.target),
                           "reference": {"unlearner": repr(self.target), **ref_info}}
            bar.stage_done()
        if targets is None and profile.scorers.get("memorization") == "neighbors" and self.k == N_NEIGHBORS:
            # the profile already holds 1 - target for every item: no second retain pass
            targets = 1.0 - np.asarray(profile.memorization, dtype=np.float64)
        elif targets is None:
            targets = neighbour_targets(model, forget, retain, k=self.k)
        self.targets = targets  # per forget item (read by tests and diagnostics)
        if check is not None and check.keep_model:
            # doing nothing is always a candidate: forget items that look held out by the
            # profiler's neighbour estimate and by the target keep the model; no trial runs
            check = check.with_estimate(target_accuracy(targets, np.zeros(len(targets))),
                                        "neighbors" if target_info["target"] == "neighbors"
                                        else "reference")
            if check.keep_model:
                bar.close()
                steps.append(noop_step(len(profile)))
                results.append(StepResult(step=0, group=-1, unlearner="noop", n_items=len(profile),
                                          seconds=0.0))
                report = SearchReport((), target_info["target"], target_info.get("reference", {}),
                                      target_accuracy(targets, profile.groups),
                                      time.perf_counter() - t0, budget=self.budget)
                plan = Plan(tuple(steps), policy=self.label, n_forget=len(profile), search=report,
                            reason=check.reason)
                return plan, model, tuple(results)
        guard = ctx.guard(model)
        scorer = _Scorer(model, forget, targets, profile.groups,
                         guard_slice(retain, seed) if guard.data is None else guard.data)
        trials: list[Trial] = []
        on_target: list[int] = []  # stages where doing nothing already scored 0: none searched
        cut: list[int] = []  # stages the budget cut short
        done: list[int] = []

        def run_stage(group: int, indices: np.ndarray, specs: Sequence[Unlearner],
                      done_now: list[int], first_improvement: bool = False) -> None:
            nonlocal stages_left
            deadline = stage_deadline(_clock(), end, stages_left)
            stages_left -= 1
            try:
                search_stage(group, indices, specs, done_now, first_improvement, deadline)
            finally:
                bar.stage_done()

        def search_stage(group, indices, specs, done_now, first_improvement, deadline) -> None:
            forget_i = forget.subset(indices)
            base = scorer(model, done_now)
            if base <= 0.0:  # no score is below 0, and a candidate is kept only if it scores lower
                on_target.append(group)
                return
            # a group step must beat doing nothing by a margin; the repair only has to improve
            bar_score = base if first_improvement else base - AUTO_MIN_GAIN
            best: tuple = (bar_score, None, None, None)  # score, unlearner, trial record, trial index
            for spec in specs:
                if first_improvement and best[1] is not None:
                    break
                if best[1] is not None and best[0] <= AUTO_ON_TARGET:
                    break  # clearly on target: no other candidate can do better by much
                if deadline is not None and _clock() >= deadline:
                    cut.append(group)  # candidates left untried
                    break
                u = spec.clone()
                bar.trial("repair" if group == -1 else f"group {group}", type(u).name or type(u).__name__)
                t = time.perf_counter()
                rec = _trial(ctx, u, model, forget_i, ctx.step_seed(len(steps)),
                             lambda m, retain_acc: scorer(m, done_now, retain_acc), guard, deadline,
                             bar.epoch)
                if rec["cut"]:
                    cut.append(group)
                trials.append(Trial(group, type(u).name or type(u).__name__, u.get_params(),
                                    rec["epochs"], float(rec["score"]), float(base),
                                    time.perf_counter() - t))
                if rec["state"] is not None and rec["score"] < best[0]:
                    best = (rec["score"], u, rec, len(trials) - 1)
            _, u, rec, i = best
            if u is None:
                return
            trials[i] = dataclasses.replace(trials[i], kept=True)
            u = rec["unlearner"]
            if rec["epochs"] > 0:
                u = u.truncated(rec["epochs"])
            model.load_state_dict(rec["state"])
            steps.append(Step.from_unlearner(group, indices, u))
            results.append(StepResult(step=len(results), group=group, unlearner=steps[-1].unlearner,
                                      n_items=len(indices), seconds=rec["seconds"],
                                      iterations=rec["iterations"], final_loss=rec["loss"]))

        try:
            for g in groups:
                done.append(g)
                run_stage(g, profile.indices(g), candidates, list(done))
            if not steps and repair:
                # an anchor holds the forget items' predictions where the group steps left them;
                # with no group step kept that is the original model's, the opposite of unlearning
                repair = [u for u in repair if not _anchored(u)]
                if not repair:
                    bar.stage_done()  # the repair stage the bar counted
            if repair:
                run_stage(-1, np.arange(len(profile)), repair, list(done), first_improvement=True)
        finally:
            bar.close()
        if not steps:
            steps.append(Step.from_unlearner(-1, range(len(profile)), as_unlearner("noop", "noop")))
            results.append(StepResult(step=0, group=-1, unlearner="noop", n_items=len(profile),
                                      seconds=0.0))
        report = SearchReport(tuple(trials), target_info["target"], target_info.get("reference", {}),
                              target_accuracy(targets, profile.groups), time.perf_counter() - t0,
                              on_target=tuple(on_target), budget=self.budget,
                              cut=tuple(dict.fromkeys(cut)))
        plan = Plan(tuple(steps), policy=self.label, n_forget=len(profile), search=report,
                    reason=reason)
        return plan, model, tuple(results)

    def _class_step(self, model: torch.nn.Module, check, steps: list, results: list) -> None:
        """Run the class-wise step on ``model`` in place (the plan's first step)."""
        ctx = self.ctx
        step = class_step(check)
        t = time.perf_counter()
        run = ctx.run(step.build(), copy.deepcopy(model),
                      ctx.forget.subset(np.asarray(check.class_positions)), ctx.retain,
                      seed=ctx.step_seed(0), guard=ctx.guard(model))
        if run.status != "ok":
            return
        model.load_state_dict(run.model.state_dict())
        steps.append(step)
        results.append(StepResult(step=0, group=step.group, unlearner=step.unlearner,
                                  n_items=len(step.indices), seconds=time.perf_counter() - t))
