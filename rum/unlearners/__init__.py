"""Unlearners: the base class, the registry, the built-ins (each registers itself on
import) and what a plug-in author needs (:class:`RunContext`, the parameter
constraints :class:`Interval` and :class:`Options`)."""

from rum._runtime.context import RunContext
from rum._validation import Interval, Options
from rum.unlearners.base import SCENARIOS, Unlearner, UnlearnerTags
from rum.unlearners.registry import (
    get_unlearner,
    list_unlearners,
    make_unlearner,
    register_unlearner,
)

# the built-ins register themselves on import
from rum.unlearners.bad_teacher import BadTeacher  # noqa: I001
from rum.unlearners.boundary_shrink import BoundaryShrink
from rum.unlearners.finetune import Finetune
from rum.unlearners.influence import Influence
from rum.unlearners.l1_sparse import L1Sparse
from rum.unlearners.neggrad import NegGrad
from rum.unlearners.neggrad_plus import NegGradPlus
from rum.unlearners.noop import Noop
from rum.unlearners.random_label import RandomLabel
from rum.unlearners.retrain import Retrain
from rum.unlearners.salun import SalUn
from rum.unlearners.scrub import SCRUB
from rum.unlearners.ssd import SSD, FisherImportances, fisher_importances
from rum.unlearners.unsir import UNSIR

__all__ = [
    "Unlearner",
    "UnlearnerTags",
    "SCENARIOS",
    "RunContext",
    "Interval",
    "Options",
    "register_unlearner",
    "get_unlearner",
    "list_unlearners",
    "make_unlearner",
    "Noop",
    "Finetune",
    "NegGrad",
    "NegGradPlus",
    "RandomLabel",
    "Retrain",
    "L1Sparse",
    "SalUn",
    "SCRUB",
    "Influence",
    "SSD",
    "BadTeacher",
    "BoundaryShrink",
    "UNSIR",
    "FisherImportances",
    "fisher_importances",
]
