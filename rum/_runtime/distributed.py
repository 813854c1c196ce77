"""Ray, the engine that spreads shadow-model and memorization training over a cluster."""

from __future__ import annotations

from types import ModuleType


def started_ray() -> ModuleType:
    """The ``ray`` module, initialised (locally when no cluster is running).

    Raises:
        ImportError: Ray is not installed; the message says how to install it.
    """
    try:
        import ray
    except ImportError:
        raise ImportError(
            "backend='ray' needs Ray: pip install 'rum-unlearn[distributed]' (or pip install ray)."
        ) from None
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True)
    return ray
