"""Evaluation: accuracies, membership inference, and the ToW scores against a retrained model."""

from rum.metrics._evaluate import EvaluationReport, evaluate
from rum.metrics.functional import accuracy_gap, tow, tow_mia

__all__ = ["evaluate", "EvaluationReport", "tow", "tow_mia", "accuracy_gap"]
