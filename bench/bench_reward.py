"""Reward throughput, single process, on typical and adversarial responses; prints a table.

    python bench/bench_reward.py [--seconds 1.0]

Target (issue #3): faithful mode ≥ 60,000 typical responses/s on one core of a 2-core machine (the original's
speed), and any response up to 1 MB / call string up to 100 KB handled in well under 100 ms.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from tool_n1.call_strings import is_valid_call_string, parse_call_string  # noqa: E402
from tool_n1.reward import compute_score  # noqa: E402

GT = json.dumps([{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}])
TYPICAL = (
    "<think>The user wants the weather in Paris in Celsius, so I call get_weather.</think>\n"
    f"<tool_call>\n{GT}\n</tool_call>"
)
PARALLEL_GT = json.dumps([{"name": "f", "arguments": {"x": i, "tags": ["a", "b"]}} for i in range(4)])
ADVERSARIAL = {
    "120 KB, 10,000 unclosed <tool_call>": "<think>x</think>" + "<tool_call>{a" * 10_000,
    "1 MB of text, no tags": "lorem ipsum " * 87_382,
    "1 MB, 40,000 closed blocks": "<think>x</think>" + "<tool_call>[]</tool_call>" * 40_000,
    "JSON nested 5,000 deep": "<think>x</think><tool_call>" + "[" * 5000 + "]" * 5000 + "</tool_call>",
    "integer of 5,000 digits": "<think>x</think><tool_call>" + "9" * 5000 + "</tool_call>",
}
CALL_STRINGS = {
    "18 calls + trailing comma (validator)": "[" + "f(a=1), " * 18 + ",]",
    "100 KB of 'a(' (parser)": "a(" * 50_000,
    "100 KB valid call list (validator)": "[" + "f(a=1), " * 12_000 + "f()]",
}


def rate(fn, seconds: float) -> tuple[float, float]:
    """Calls per second and mean seconds per call, running ``fn`` for about ``seconds``."""
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(100):
            fn()
        n += 100
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed, elapsed / n


def once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent per throughput row (default 1.0)")
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}\n")
    print(f"| {'throughput (single process)':<46} | {'responses/s':>12} | {'µs/response':>11} |")
    print(f"|{'-' * 48}|{'-' * 14}|{'-' * 13}|")
    rows = [
        ("typical, faithful binary", lambda: compute_score("toolcall", TYPICAL, GT)),
        ("typical, improved binary", lambda: compute_score("toolcall", TYPICAL, GT, mode="improved")),
        (
            "typical, faithful partial_think_name",
            lambda: compute_score("toolcall", TYPICAL, GT, variant="partial_think_name"),
        ),
        (
            "4 parallel calls, faithful binary",
            lambda: compute_score("toolcall", f"<think>t</think><tool_call>{PARALLEL_GT}</tool_call>", PARALLEL_GT),
        ),
    ]
    for label, fn in rows:
        per_second, per_call = rate(fn, args.seconds)
        print(f"| {label:<46} | {per_second:>12,.0f} | {per_call * 1e6:>11.1f} |")

    print(f"\n| {'adversarial input (one call)':<46} | {'faithful ms':>12} | {'improved ms':>11} |")
    print(f"|{'-' * 48}|{'-' * 14}|{'-' * 13}|")
    for label, response in ADVERSARIAL.items():
        faithful = once(lambda r=response: compute_score("toolcall", r, GT))
        improved = once(lambda r=response: compute_score("toolcall", r, GT, mode="improved"))
        print(f"| {label:<46} | {faithful * 1e3:>12.2f} | {improved * 1e3:>11.2f} |")

    print(f"\n| {'ToolACE call string (one call)':<46} | {'faithful ms':>12} | {'robust ms':>11} |")
    print(f"|{'-' * 48}|{'-' * 14}|{'-' * 13}|")
    for label, text in CALL_STRINGS.items():
        if "validator" in label:
            faithful = once(lambda t=text: is_valid_call_string(t))
        else:
            faithful = once(lambda t=text: parse_call_string(t, mode="faithful"))
        robust = once(lambda t=text: _robust_or_error(t))
        print(f"| {label:<46} | {faithful * 1e3:>12.2f} | {robust * 1e3:>11.2f} |")


def _robust_or_error(text: str) -> None:
    try:
        parse_call_string(text, mode="robust")
    except ValueError:
        pass


if __name__ == "__main__":
    main()
