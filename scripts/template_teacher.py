"""A rule-based stand-in for the distillation teacher, for the offline CPU demo (scripts/run_e2e.py).

    .venv/rl/bin/python scripts/template_teacher.py --records data/unified/unified.jsonl --output teacher.jsonl

The paper distilled reasoning from DeepSeek-R1 (``data_process/distill_data.py`` does that against any
OpenAI-compatible endpoint). Without network, this writes the same journal lines ``distill_data.py`` writes, with a
templated reasoning sentence and the ground-truth calls as the "teacher output", so the SFT stage
(``LLaMA-Factory/data_process.py``) runs unchanged. Template reasoning teaches the format, not reasoning: the
demo's SFT numbers say nothing about the paper's Reason-SFT.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from tool_n1.distillation import load_samples, system_prompt
from tool_n1.prompts import format_response
from tool_n1.reward import compute_score


def reasoning(calls: list[dict]) -> str:
    """One short sentence: on a CPU every generated token costs, and the format is what SFT should teach."""
    names = " and ".join(dict.fromkeys(c["name"] for c in calls))
    return f"The request needs {names}; the arguments are in the question."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--records", required=True, help="unified JSONL from data_process.py")
    parser.add_argument("--output", type=Path, required=True, help="journal JSONL in distill_data.py's format")
    parser.add_argument(
        "--ids",
        default="toolace_single_turn,xlam",
        help="record ids to use: single-turn ones, as the distillation (default %(default)s)",
    )
    parser.add_argument("--limit", type=int, default=None, help="at most this many samples (default: all)")
    args = parser.parse_args(argv)

    samples, skipped = load_samples(args.records, set(args.ids.split(",")), args.limit)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8") as handle:
        for sample in samples:
            system = system_prompt("distill", sample)
            output = format_response(sample["answer"], reasoning(sample["answer"]))
            reward = compute_score("toolcall", output, json.dumps(sample["answer"]))
            line = {
                "schema": 1,
                "key": sample["key"],
                "source_id": sample["source_id"],
                "input_line": sample["line"],
                "status": "kept" if reward["score"] >= 1 else "dropped",
                "reason": None,
                "teacher": {"model": "template", "base_url_host": None},
                "prompt": {"kind": "distill", "sha256": hashlib.sha256(system.encode()).hexdigest()},
                "system_prompt": system,
                "query": sample["query"],
                "answer": sample["answer"],
                "output": output,
                "reward": {"variant": "binary", "mode": "faithful", **reward},
            }
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(f"template teacher: {len(samples)} samples -> {args.output} (records skipped: {dict(skipped)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
