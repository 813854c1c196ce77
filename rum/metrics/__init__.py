"""Evaluation: accuracies, membership inference, the ToW scores against a retrained model, and
two cheap forgetting checks beside :func:`rum.audit` (margin KL, a linear probe)."""

from rum.metrics._evaluate import EvaluationReport, evaluate
from rum.metrics.functional import accuracy_gap, tow, tow_mia
from rum.metrics.margins import MarginKL, margin_kl
from rum.metrics.probe import ProbeResult, linear_probe

__all__ = ["evaluate", "EvaluationReport", "tow", "tow_mia", "accuracy_gap", "margin_kl", "MarginKL",
           "linear_probe", "ProbeResult"]
