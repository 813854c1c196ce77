"""The custom-unlearner example defines a plug-in that passes the conformance kit."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rum.testing import check_unlearner

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_unlearner.py"


def test_custom_unlearner_example_passes_the_kit():
    spec = importlib.util.spec_from_file_location("rum_example_custom_unlearner", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = check_unlearner(module.UniformForget(epochs=3))
    assert set(result.values()) == {"passed"}
