"""The evaluations beyond the paper through ``run_bfcl.py``: BFCL multi-turn (ground-truth round trip through
bfcl-eval's stateful executor), several runs (--seeds / --formats) with mean ± std and the max − min spread, and the
abstention figures in the report."""

from __future__ import annotations

import json
import sys

import pytest

from tests.bfcl_support import bfcl_root, evaluate_argv

pytestmark = pytest.mark.eval_env


def test_multi_turn_ground_truth_round_trip(tmp_path):
    root = bfcl_root()
    import bfcl_synthetic as syn
    import run_bfcl

    key = "tool-n1/mt-roundtrip"
    for category in syn.MULTI_TURN:
        syn.write_multi_turn(tmp_path / "result", key, category, limit=3)
    report = run_bfcl.run(evaluate_argv(root, key, tmp_path, "multi-turn"))
    assert {c: report["categories"][c]["accuracy"] for c in syn.MULTI_TURN} == dict.fromkeys(syn.MULTI_TURN, 100.0)
    assert report["multi_turn"]["overall"] == 100.0 and report["multi_turn"]["scored"] == 4
    assert "bfcl_eval.eval_checker.multi_turn_eval.func_source_code.memory_vector" not in sys.modules


def test_seeds_report_mean_and_std(tmp_path):
    root = bfcl_root()
    import bfcl_synthetic as syn
    import run_bfcl

    key = "tool-n1/seeds"
    table = syn.TABLE2_COUNTS
    for k, name in enumerate(("Tool-N1-7B", "Tool-N1-14B"), 1):
        syn.write_single_turn(tmp_path / "result", f"{key}/seed-{k}", table[name])
    dirs = ["--result-dir", str(tmp_path / "result"), "--score-dir", str(tmp_path / "score")]
    report = run_bfcl.run(["evaluate", "--project-root", str(root), "--model", key, "--seeds", "2", *dirs])
    assert report["kind"] == "seeds" and list(report["runs"]) == ["seed-1", "seed-2"]
    overall = report["stats"]["overall"]
    assert overall["mean"] == pytest.approx((84.82 + 85.97) / 2, abs=0.02)
    assert overall["std"] == pytest.approx(abs(85.97 - 84.82) / 2**0.5, abs=0.02)
    assert report["stats"]["abstention"]["runs"] == 2  # irrelevance replies are "[]": abstention is scored
    again = run_bfcl.run(["report", "--project-root", str(root), "--model", key, "--seeds", "2", *dirs])
    assert again["stats"] == json.loads(json.dumps(report["stats"]))
    # another model evaluated into the same score folder: bfcl's summary lists the earlier runs too
    syn.write_single_turn(tmp_path / "result", "tool-n1/solo", table["Tool-N1-7B"])
    solo = run_bfcl.run(["evaluate", "--project-root", str(root), "--model", "tool-n1/solo", *dirs])
    assert solo["paper_metrics"]["overall"] == pytest.approx(84.82, abs=0.02)
