"""The README's main job at its `tiny` profile: every stage of scripts/run_e2e.py on a random tiny model.

Runs the real CLI (data → SFT with LLaMA-Factory → GRPO with TRL from SFT and from the base model → the lr = 0
control → held-out + BFCL evaluation → report) across the three environments that scripts/test.sh has set up, then
checks what a user would read, including that the lr = 0 control reproduced the SFT model's greedy outputs exactly.
Minutes on an idle 2-core machine; 53 min measured on a 2-core machine shared with other jobs (load 8-23).
"""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.rl_env  # minutes: the README's main job at its CI profile


def test_tiny_profile_runs_every_stage_and_resumes(tmp_path):
    for env in ("rl", "sft", "eval"):
        assert (REPO / ".venv" / env / "bin" / "python").exists(), f"bash scripts/setup.sh {env} first"
    run_dir = tmp_path / "e2e"
    cmd = [sys.executable, str(REPO / "scripts" / "run_e2e.py"), "--profile", "tiny", "--run-dir", str(run_dir)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    report = (run_dir / "report.md").read_text()
    labels = ("base model", "SFT (LoRA, merged)", "SFT + GRPO", "GRPO from the base model", "SFT + GRPO at lr = 0")
    for label in labels:
        row = next(line for line in report.splitlines() if line.startswith(f"| {label}"))
        assert "not run" not in row and "[" in row, row  # a rate with its interval
    for model in ("base", "sft", "sft_grpo", "base_grpo", "sft_grpo_lr0"):
        held = json.loads((run_dir / "eval" / model / "heldout" / "report.json").read_text())
        assert held["all"]["n"] == 6 and held["all"]["unanswered"] == 0
        bfcl = json.loads((run_dir / "eval" / model / "bfcl" / "report.json").read_text())
        assert sum(v["total"] for v in bfcl["categories"].values()) == 2
    for stage in ("grpo", "grpo_base", "control"):
        metrics = [json.loads(line) for line in (run_dir / stage / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in metrics] == [1, 2]
        assert json.loads((run_dir / stage / "final" / "config.json").read_text())["use_cache"] is True
    control = json.loads((run_dir / "eval" / "control.json").read_text())
    assert control["identical"] == control["n"] == 6 and control["weights_max_abs_difference"] == 0.0
    assert "lr = 0 control (exact): 6/6" in report
    comparisons = json.loads((run_dir / "comparisons.json").read_text())
    assert set(comparisons) == {"sft_grpo_vs_sft", "base_grpo_vs_base", "sft_vs_base"}
    assert all(0.0 <= c["p_value"] <= 1.0 and c["n"] == 6 for c in comparisons.values())
    assert "significant" in report and (run_dir / "grpo_curves.png").is_file()
    assert (run_dir / "sft" / "merged" / "config.json").exists() and (run_dir / "grpo" / "final").is_dir()
    seeds = json.loads((run_dir / "robustness" / "sft" / "seeds.json").read_text())
    formats = json.loads((run_dir / "robustness" / "sft" / "formats.json").read_text())
    assert sorted(seeds["runs"]) == ["seed-1", "seed-2"] and sorted(formats["runs"]) == ["fmt-bfcl", "fmt-train"]
    for result in (seeds, formats):  # an AST item and a should-not-call item, scored by bfcl-eval in every run
        # (the paper's Non-live / Live columns need every category of the group: "-" on a slice, as in the report)
        assert result["stats"]["abstention"]["runs"] == 2 and result["stats"]["bfcl_overall_acc"]["runs"] == 2, result
    assert "| SFT (LoRA, merged) | 2 sampled runs |" in report and "formats fmt-bfcl, fmt-train" in report

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # every stage is done: all skipped
    assert again.returncode == 0 and again.stdout.count("(done before; skipped)") == 9, again.stdout[-2000:]
