"""The rum command line."""

from __future__ import annotations

import json
import subprocess
import sys

from rum.cli import main


def test_list_prints_every_unlearner_as_json(capsys):
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"noop", "finetune", "retrain"} <= {r["name"] for r in rows}
    assert all({"needs_retain", "cost", "source"} <= set(r) for r in rows)


def test_demo_prints_the_evaluation_table(capsys):
    assert main(["demo", "--no-progress", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "rum (default pipeline)" in out and "retrain (reference)" in out
    assert "ToW" in out and "speed-up" in out


def test_a_bad_device_exits_non_zero_with_a_message(capsys):
    assert main(["demo", "--device", "tpu9"]) == 2
    assert "device='tpu9'" in capsys.readouterr().err


def test_module_entry_point_and_help():
    out = subprocess.run([sys.executable, "-m", "rum.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "demo" in out.stdout and "list" in out.stdout
