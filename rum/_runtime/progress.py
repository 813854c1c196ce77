"""Progress bars (tqdm), shown on a terminal or when asked."""

from __future__ import annotations

import sys


def progress_enabled(progress: bool | None) -> bool:
    """Whether to show progress bars: ``progress`` itself, or (``None``) whether stderr is a terminal."""
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


class StepBar:
    """A step's bar: iterations done out of those announced, and the last loss.

    With ``desc`` ``None`` it shows nothing (every method is then a no-op).
    """

    def __init__(self, desc: str | None):
        self.bar = None
        if desc is not None:
            from tqdm.auto import tqdm

            self.bar = tqdm(desc=desc, unit="it", leave=True)

    def start(self, total: int) -> None:
        if self.bar is not None:
            self.bar.reset(total=total)

    def advance(self, n: int, loss: float | None) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
