"""rum: machine unlearning for PyTorch classifiers.

Profile the forget set by memorization and entanglement, plan an unlearner
per group, execute the plan: ``rum.unlearn(model, forget_set, retain_set)``.
"""

from rum._validation import Interval, Options
from rum._version import __version__
from rum.api import unlearn
from rum.executor import UnlearnResult, execute
from rum.metrics import EvaluationReport, evaluate
from rum.planner import Plan, Step, plan
from rum.profiler import Profile, profile
from rum.reporting import report
from rum.training import fit
from rum.unlearners import (  # noqa: I001  (registers the built-in unlearners)
    RunContext,
    Unlearner,
    UnlearnerTags,
    get_unlearner,
    list_unlearners,
    register_unlearner,
)

__all__ = [
    "__version__",
    "unlearn",
    "profile",
    "plan",
    "execute",
    "evaluate",
    "report",
    "fit",
    "Unlearner",
    "UnlearnerTags",
    "RunContext",
    "register_unlearner",
    "get_unlearner",
    "list_unlearners",
    "Profile",
    "Plan",
    "Step",
    "UnlearnResult",
    "EvaluationReport",
    "Interval",
    "Options",
]
