"""The embedded demo data: seeded, in the real raw formats, and read by the pipeline without a single rejection."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tool_n1.call_strings import is_valid_call_string, parse_call_string

pytestmark = pytest.mark.rl_env


def make(tmp_path, seed=0):
    out = tmp_path / f"raw{seed}"
    cmd = [
        sys.executable,
        "make_demo_data.py",
        "--output-dir",
        str(out),
        "--seed",
        str(seed),
        "--toolace",
        "30",
        "--xlam",
        "30",
        "--heldout",
        "10",
    ]
    subprocess.run(cmd, cwd=REPO / "data_process", check=True, capture_output=True)
    return out


def test_seeded_and_in_the_raw_formats(tmp_path):
    first, again, other = make(tmp_path), make(tmp_path / "b"), make(tmp_path, seed=5)
    assert (first / "toolace.json").read_text() == (again / "toolace.json").read_text()
    assert (first / "xlam.json").read_text() != (other / "xlam.json").read_text()
    dialogs = json.loads((first / "toolace.json").read_text())
    calls = [
        t["value"] for d in dialogs for t in d["conversations"] if t["from"] == "assistant" and t["value"][0] == "["
    ]
    assert calls and all(is_valid_call_string(c) for c in calls)
    assert any(len(parse_call_string(c)) == 2 for c in calls), "no parallel call"
    assert any(sum(t["from"] == "user" for t in d["conversations"]) == 2 for d in dialogs), "no multi-turn dialog"
    row = json.loads((first / "xlam.json").read_text())[0]
    assert set(row) == {"id", "query", "answers", "tools"} and isinstance(json.loads(row["answers"]), list)
    assert len(json.loads((first / "heldout_xlam.json").read_text())) == 10


@pytest.mark.parametrize("mode", ["faithful", "improved"])
def test_pipeline_keeps_every_row(tmp_path, mode):
    raw = make(tmp_path)
    out = tmp_path / f"unified_{mode}"
    cmd = [
        sys.executable,
        "data_process.py",
        "--toolace",
        str(raw / "toolace.json"),
        "--xlam",
        str(raw / "xlam.json"),
        "--output-dir",
        str(out),
        "--mode",
        mode,
        "--strict",
        "--no-progress",
    ]
    subprocess.run(cmd, cwd=REPO / "data_process", check=True, capture_output=True)
    report = json.loads((out / "report.json").read_text())
    assert report["rows_read"] == 60
    for source in ("toolace", "xlam"):
        assert (
            report["sources"][source]["rows_rejected"] == {} and report["sources"][source]["call_turns_rejected"] == {}
        )
