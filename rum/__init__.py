"""rum: machine unlearning for PyTorch classifiers.

Profile the forget set by memorization and entanglement, plan an unlearner
per group, execute the plan: ``rum.unlearn(model, forget_set, retain_set)``.
"""

# Import order matters: the unlearners register themselves before the
# pipeline modules that look them up, and the influence package comes last.
from rum._validation import Interval, Options
from rum._version import __version__
from rum.unlearners import (
    RunContext,
    Unlearner,
    UnlearnerTags,
    get_unlearner,
    list_unlearners,
    register_unlearner,
)
from rum.api import unlearn
from rum.executor import UnlearnResult, execute
from rum.metrics import EvaluationReport, evaluate
from rum.planner import Plan, Step, plan
from rum.profiler import Profile, profile
from rum.reporting import report
from rum.training import fit
from rum import requests
from rum.influence import correct

__all__ = [
    "__version__",
    "unlearn",
    "correct",
    "requests",
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
