"""The README's main job at its `tiny` profile: every stage of scripts/run_e2e.py on a random tiny model.

Runs the real CLI (data → SFT with LLaMA-Factory → GRPO with TRL → held-out + BFCL evaluation → report) across
the three environments that scripts/test.sh has set up, then kills nothing and checks what a user would read.
About 2 minutes on 2 cores.
"""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.rl_env  # about 2 minutes: the README's main job at its CI profile


def test_tiny_profile_runs_every_stage_and_resumes(tmp_path):
    for env in ("rl", "sft", "eval"):
        assert (REPO / ".venv" / env / "bin" / "python").exists(), f"bash scripts/setup.sh {env} first"
    run_dir = tmp_path / "e2e"
    cmd = [sys.executable, str(REPO / "scripts" / "run_e2e.py"), "--profile", "tiny", "--run-dir", str(run_dir)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    report = (run_dir / "report.md").read_text()
    for label in ("base model", "SFT (LoRA, merged)", "SFT + GRPO"):
        row = next(line for line in report.splitlines() if line.startswith(f"| {label} |"))
        assert "not run" not in row, row
    for model in ("base", "sft", "sft_grpo"):
        held = json.loads((run_dir / "eval" / model / "heldout" / "report.json").read_text())
        assert held["all"]["n"] == 6 and held["all"]["missing"] == 0
        bfcl = json.loads((run_dir / "eval" / model / "bfcl" / "report.json").read_text())
        assert sum(v["total"] for v in bfcl["categories"].values()) == 2
    metrics = [json.loads(line) for line in (run_dir / "grpo" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]
    assert {p.name for p in run_dir.glob("grpo_*.png")} == {"grpo_reward.png", "grpo_length.png", "grpo_kl.png"}
    assert (run_dir / "sft" / "merged" / "config.json").exists() and (run_dir / "grpo" / "final").is_dir()

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # every stage is done: all skipped
    assert again.returncode == 0 and again.stdout.count("(done before; skipped)") == 6, again.stdout[-2000:]
