from __future__ import annotations

import rum
from rum._doc_tables import DOC, unlearners_markdown


def test_committed_unlearner_table_is_current():
    assert DOC.read_text() == unlearners_markdown(), (
        "docs/unlearners.md is stale; regenerate it with: python -m rum._doc_tables"
    )


def test_table_has_one_row_per_builtin_unlearner():
    text = unlearners_markdown()
    for name in rum.list_unlearners():
        if rum.get_unlearner(name).__module__.startswith("rum."):
            assert f"| `{name}` |" in text
    assert "| `salun` | `SalUn` |" in text and "Fan et al., ICLR 2024" in text
