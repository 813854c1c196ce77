"""Lazy access to matplotlib (the ``plot`` extra)."""

from __future__ import annotations


def require_matplotlib():
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Plotting needs matplotlib: pip install 'rum-unlearn[plot]'."
        ) from None
    return plt
