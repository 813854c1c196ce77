"""The per-example membership audit: ``rum.audit`` and the :class:`Audit` it returns."""

from rum._audit._record import Audit
from rum._audit._run import audit

__all__ = ["audit", "Audit"]
