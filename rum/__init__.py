"""rum: machine unlearning for PyTorch classifiers.

Profile the forget set by memorization and entanglement, plan an unlearner per
group, execute the plan: ``rum.unlearn(model, forget_set, retain_set)``.

The package is built in layers, lowest first, and no module imports a layer above
its own (checked in CI): foundation (errors, validation, records, data) -> runtime
(context, optimisation loop, retain guard, progress) -> plug-ins (unlearners,
influence math) -> the step runner -> stages (profiler -> planner -> executor) ->
facade (``unlearn``, ``correct``, ``evaluate``, ``audit``, ``report``) -> apps (CLI, demo,
conformance kit).
"""

from rum import policies, requests
from rum._api import unlearn
from rum._audit import Audit, audit
from rum._correction import correct
from rum._data import TensorData
from rum._runner import StepResult
from rum._runtime.context import RunContext
from rum._runtime.training import fit
from rum._version import __version__
from rum.executor import UnlearnResult, execute
from rum.influence import CorrectionResult
from rum.metrics import EvaluationReport, evaluate
from rum.planner import Plan, SearchReport, Step, plan
from rum.profiler import Profile, profile
from rum.reporting import report
from rum.unlearners import (
    Unlearner,
    UnlearnerTags,
    get_unlearner,
    list_unlearners,
    register_unlearner,
)

__all__ = [
    "__version__",
    # the pipeline
    "unlearn",
    "profile",
    "plan",
    "execute",
    "policies",
    # corrections
    "correct",
    "requests",
    # evaluation
    "evaluate",
    "audit",
    "report",
    "fit",
    # records
    "Profile",
    "Plan",
    "Step",
    "SearchReport",
    "UnlearnResult",
    "StepResult",
    "CorrectionResult",
    "EvaluationReport",
    "Audit",
    "TensorData",
    # plug-ins
    "Unlearner",
    "UnlearnerTags",
    "RunContext",
    "register_unlearner",
    "get_unlearner",
    "list_unlearners",
]
