"""The Profile record: per-item difficulty scores and the groups they define."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rum._records import float_array, frozen_array, jsonable, load_json, save_json, table
from rum.profiler._check import ForgetSetCheck

__all__ = ["Profile", "GroupSummary"]


@dataclass(frozen=True)
class GroupSummary:
    """One group of forget items.

    Attributes:
        group: the group id (0 is the easiest).
        size: number of forget items in it.
        memorization: mean memorization score of its items.
        entanglement: mean per-item entanglement score of its items.
        es: the set-level entanglement score of the group against the retain
            set (NaN when not computed).
    """

    group: int
    size: int
    memorization: float = float("nan")
    entanglement: float = float("nan")
    es: float = float("nan")

    def to_dict(self) -> dict:
        return jsonable(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> GroupSummary:
        nan = float("nan")
        return cls(
            group=int(d["group"]),
            size=int(d["size"]),
            memorization=nan if d.get("memorization") is None else float(d["memorization"]),
            entanglement=nan if d.get("entanglement") is None else float(d["entanglement"]),
            es=nan if d.get("es") is None else float(d["es"]),
        )


@dataclass(frozen=True)
class Profile:
    """Difficulty scores of every forget item and its group, in forget-set order.

    Attributes:
        memorization: per-item memorization score (higher = more memorized).
        entanglement: per-item entanglement score (higher = more entangled with
            retain data); NaN where not computed.
        groups: integer group id per item; groups are ordered easiest first.
        summary: one :class:`GroupSummary` per group, in group order.
        scorers: the names of the memorization scorer, the entanglement scorer
            and the grouping strategy used.
        seed: the seed the profile was computed with.
        check: what kind of forget set this is (class-wise, already like
            held-out data, or neither; :class:`~rum.profiler.ForgetSetCheck`),
            or ``None`` when not measured (a profile built from arrays).

    Examples:
        >>> import numpy as np
        >>> p = Profile.single_group(np.array([0.1, 0.9]))
        >>> p.n_groups, p.indices(0).tolist()
        (1, [0, 1])
    """

    memorization: np.ndarray
    entanglement: np.ndarray
    groups: np.ndarray
    summary: tuple[GroupSummary, ...]
    scorers: dict = field(default_factory=dict)
    seed: int | None = None
    check: ForgetSetCheck | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "memorization", float_array(self.memorization))
        object.__setattr__(self, "entanglement", float_array(self.entanglement))
        object.__setattr__(self, "groups", frozen_array(self.groups, np.int64))
        object.__setattr__(self, "summary", tuple(self.summary))
        n = len(self.groups)
        if len(self.memorization) != n or len(self.entanglement) != n:
            raise ValueError(
                "Profile arrays must have one entry per forget item: "
                f"memorization={len(self.memorization)}, entanglement={len(self.entanglement)}, "
                f"groups={n}."
            )

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def single_group(
        cls,
        memorization: np.ndarray,
        entanglement: np.ndarray | None = None,
        *,
        scorers: dict | None = None,
        seed: int | None = None,
    ) -> Profile:
        """A profile that puts every item in one group."""
        mem = np.asarray(memorization, dtype=float)
        ent = np.full(len(mem), np.nan) if entanglement is None else np.asarray(entanglement, float)
        groups = np.zeros(len(mem), dtype=np.int64)
        return cls.from_groups(mem, ent, groups, scorers=scorers, seed=seed)

    @classmethod
    def from_groups(
        cls,
        memorization: np.ndarray,
        entanglement: np.ndarray,
        groups: np.ndarray,
        *,
        es: dict[int, float] | None = None,
        scorers: dict | None = None,
        seed: int | None = None,
        check: ForgetSetCheck | None = None,
    ) -> Profile:
        """Build a profile and its group summary from per-item arrays."""
        mem = np.asarray(memorization, dtype=float)
        ent = np.asarray(entanglement, dtype=float)
        groups = np.asarray(groups, dtype=np.int64)
        summary = []
        for g in np.unique(groups):
            sel = groups == g
            summary.append(
                GroupSummary(
                    group=int(g),
                    size=int(sel.sum()),
                    memorization=_nanmean(mem[sel]),
                    entanglement=_nanmean(ent[sel]),
                    es=float((es or {}).get(int(g), np.nan)),
                )
            )
        return cls(mem, ent, groups, tuple(summary), dict(scorers or {}), seed, check)

    # -- access -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.groups)

    @property
    def n_groups(self) -> int:
        return len(self.summary)

    def indices(self, group: int) -> np.ndarray:
        """Forget-set positions of the items in ``group``, ascending."""
        return np.flatnonzero(self.groups == group)

    # -- presentation -------------------------------------------------------------------------
    def __str__(self) -> str:
        rows = [(s.group, s.size, s.memorization, s.entanglement, s.es) for s in self.summary]
        scorer_txt = ", ".join(f"{k}={v}" for k, v in self.scorers.items())
        title = f"Profile of {len(self)} forget items" + (f" ({scorer_txt})" if scorer_txt else "")
        text = table(["group", "size", "memorization", "entanglement", "ES"], rows, title)
        return text if self.check is None else f"{text}\nforget set: {self.check.reason}"

    def plot(self, ax: Any = None):
        """Scatter memorization against entanglement, coloured by group (needs the ``plot`` extra)."""
        from rum._plotting import require_matplotlib

        plt = require_matplotlib()
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 4))
        ent = np.nan_to_num(self.entanglement, nan=0.0)
        sc = ax.scatter(self.memorization, ent, c=self.groups, cmap="viridis", s=12)
        ax.set_xlabel(f"memorization ({self.scorers.get('memorization', '?')})")
        ax.set_ylabel(f"entanglement ({self.scorers.get('entanglement', '?')})")
        ax.legend(*sc.legend_elements(), title="group", loc="best")
        return ax

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "memorization": jsonable(self.memorization),
            "entanglement": jsonable(self.entanglement),
            "groups": jsonable(self.groups),
            "summary": [s.to_dict() for s in self.summary],
            "scorers": jsonable(self.scorers),
            "seed": self.seed,
            **({} if self.check is None else {"check": self.check.to_dict()}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Profile:
        return cls(
            memorization=d["memorization"],
            entanglement=d["entanglement"],
            groups=d["groups"],
            summary=tuple(GroupSummary.from_dict(s) for s in d["summary"]),
            scorers=dict(d.get("scorers") or {}),
            seed=d.get("seed"),
            check=None if d.get("check") is None else ForgetSetCheck.from_dict(d["check"]),
        )

    def save(self, path: str | Path) -> Path:
        """Write the profile as JSON."""
        return save_json(self, path)

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        """Read a profile written by :meth:`save`."""
        return cls.from_dict(load_json(path))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Profile):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def _nanmean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else float("nan")
