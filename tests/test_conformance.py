"""Every unlearner registered inside rum passes the public conformance kit.

The list is read from the registry when this module is collected, so a new
built-in unlearner is tested here without editing this file.
"""

from __future__ import annotations

import rum  # noqa: F401  (registers the built-in unlearners)
from rum.testing import parametrize_with_checks, registered_unlearners


@parametrize_with_checks(registered_unlearners())
def test_registered_unlearner_conforms(unlearner, check):
    check(unlearner)
