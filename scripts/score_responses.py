"""Score model responses with the Tool-N1 reward and print a summary; rescore verl rollout dumps with any variant.

    python scripts/score_responses.py --demo
    python scripts/score_responses.py --input rollouts/0.jsonl --variant binary --mode improved --output scored.jsonl

Input: JSONL, one response per line, with the response under ``response`` (or verl's rollout-dump key ``output``,
or ``solution_str``) and the ground truth under ``ground_truth`` (or ``gts``, or ``reward_model.ground_truth``);
``extra_info`` is passed through when present. A line that cannot be read is counted with its reason, never fatal.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from tool_n1.prompts import format_response  # noqa: E402
from tool_n1.reward import MODES, VARIANTS, compute_score  # noqa: E402

WEATHER = [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}]
PARALLEL = [{"name": "get_weather", "arguments": {"city": "Oslo"}}, {"name": "get_time", "arguments": {"tz": 1}}]
DEMO = [
    ("correct", format_response(WEATHER, "Paris, Celsius."), WEATHER),
    ("no reasoning tags", f"<tool_call>{json.dumps(WEATHER)}</tool_call>", WEATHER),
    (
        "wrong argument value",
        format_response([{**WEATHER[0], "arguments": {"city": "Paris", "unit": "f"}}], "r"),
        WEATHER,
    ),
    (
        "Qwen-native: one call per block",
        "<think>two calls</think>" + "".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in PARALLEL),
        PARALLEL,
    ),
    (
        "1.0 where the ground truth has 1",
        format_response([PARALLEL[0], {"name": "get_time", "arguments": {"tz": 1.0}}], "r"),
        PARALLEL,
    ),
    ("reasoning after the call", f"<tool_call>{json.dumps(WEATHER)}</tool_call><think>done</think>", WEATHER),
    ("plain-text answer, nothing to call", "<think>no tool fits</think>I cannot do that with these tools.", []),
    ("garbage", "<tool_call>5</tool_call>", WEATHER),
]


def read_rows(path: Path, problems: Counter):
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                response = row.get("response", row.get("output", row.get("solution_str")))
                truth = row.get("ground_truth", row.get("gts", (row.get("reward_model") or {}).get("ground_truth")))
                if response is None or truth is None:
                    raise KeyError("no response or ground-truth field")
            except (json.JSONDecodeError, KeyError, AttributeError, TypeError) as exc:
                problems[f"line {number}: {type(exc).__name__}: {exc}"[:120]] += 1
                continue
            yield f"line {number}", response, truth, row.get("extra_info")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, help="JSONL file of responses and ground truths")
    source.add_argument("--demo", action="store_true", help="score built-in examples under every variant and mode")
    parser.add_argument(
        "--variant",
        choices=VARIANTS,
        default=None,
        help="reward variant (default: from each row's extra_info.prompt_type, else binary)",
    )
    parser.add_argument(
        "--mode",
        choices=list(MODES),
        default="faithful",
        help="faithful = the original reward; improved = all documented fixes (default faithful)",
    )
    parser.add_argument("--output", type=Path, help="write each row's reward dict as JSONL here")
    args = parser.parse_args(argv)

    if args.demo:
        print(f"| {'response':<36} | " + " | ".join(f"{v:>18}" for v in VARIANTS) + " | improved binary |")
        print("|" + "|".join("-" * (w + 2) for w in [36] + [18] * len(VARIANTS) + [15]) + "|")
        for label, response, truth in DEMO:
            scores = [compute_score("toolcall", response, json.dumps(truth), variant=v)["score"] for v in VARIANTS]
            improved = compute_score("toolcall", response, json.dumps(truth), mode="improved")
            print(f"| {label:<36} | " + " | ".join(f"{s:>18.1f}" for s in scores) + f" | {improved['score']:>15.1f} |")
        return 0

    problems: Counter = Counter()
    totals: Counter = Counter()
    errors: Counter = Counter()
    out = args.output.open("w", encoding="utf-8") if args.output else None
    for where, response, truth, extra_info in read_rows(args.input, problems):
        result = compute_score("toolcall", response, truth, extra_info, variant=args.variant, mode=args.mode)
        totals["rows"] += 1
        for key in ("score", "format_ok", "call_parsed", "calls_match"):
            totals[key] += result[key]
        errors[result["parse_error"] or "(none)"] += 1
        if out:
            out.write(json.dumps({"where": where, **result}) + "\n")
    if out:
        out.close()
    n = max(totals["rows"], 1)
    setting = f"{args.mode}, {args.variant or 'variant per row'}"
    print(f"rows scored: {totals['rows']}, unreadable: {sum(problems.values())}  ({setting})")
    for key in ("score", "format_ok", "call_parsed", "calls_match"):
        print(f"  mean {key:<12} {totals[key] / n:.4f}")
    print("  parse errors:", ", ".join(f"{k} ×{v}" for k, v in errors.most_common(5)))
    for problem, count in problems.most_common(10):
        print(f"  unreadable: {problem} ×{count}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
