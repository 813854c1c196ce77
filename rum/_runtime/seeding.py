"""Scoped seeding: run code under a fixed torch seed without touching the caller's RNG state."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[torch.Generator]:
    """Seed torch's global RNGs inside the block and restore them afterwards.

    Yields a CPU ``torch.Generator`` seeded with ``seed`` for explicit use.
    """
    devices = []
    if device is not None and device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices, enabled=True):
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)


def step_seeds(seed: int, n: int) -> list[int]:
    """Independent per-step seeds derived from a run's seed (the step at position ``i`` gets the ``i``-th).

    Examples:
        >>> a = step_seeds(0, 3)
        >>> len(set(a)), a[:2] == step_seeds(0, 2)
        (3, True)
    """
    return [int(s.generate_state(1, np.uint64)[0] >> 1) for s in np.random.SeedSequence(seed).spawn(n)]
