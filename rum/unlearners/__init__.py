"""Built-in unlearners (each registers itself on import) and the plug-in API."""

from rum.unlearners.base import Unlearner, UnlearnerTags
from rum.unlearners.context import RunContext
from rum.unlearners.finetune import Finetune
from rum.unlearners.influence import Influence
from rum.unlearners.l1_sparse import L1Sparse
from rum.unlearners.neggrad import NegGrad
from rum.unlearners.neggrad_plus import NegGradPlus
from rum.unlearners.noop import Noop  # noqa: I001  (import order registers the built-ins)
from rum.unlearners.random_label import RandomLabel
from rum.unlearners.registry import (
    get_unlearner,
    list_unlearners,
    make_unlearner,
    register_unlearner,
)
from rum.unlearners.retrain import Retrain
from rum.unlearners.salun import SalUn
from rum.unlearners.scrub import SCRUB

__all__ = [
    "Unlearner",
    "UnlearnerTags",
    "RunContext",
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
]
