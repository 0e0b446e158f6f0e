"""Reward throughput, single process, on typical and adversarial responses; prints a table.

    python bench/bench_reward.py [--seconds 1.0]

Targets: faithful mode ≥ 60,000 typical responses/s on one core of a 2-core machine (the original's speed); any
response up to 1 MB, call-dense ones included, and any call string up to 100 KB in well under 100 ms of CPU time.
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
from tool_n1.reward import VARIANTS, compute_score  # noqa: E402

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
_CALL = json.dumps({"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}})
_MB = 1 << 20
CALL_DENSE = {
    "1 MB list of calls": "<think>x</think><tool_call>["
    + ", ".join([_CALL] * (_MB // (len(_CALL) + 2)))
    + "]</tool_call>",
    "1 MB list of tiny calls": "<think>x</think><tool_call>["
    + ",".join(['{"name":"f","arguments":{}}'] * (_MB // 28))
    + "]</tool_call>",
    "1 MB, arguments as JSON strings": "<think>x</think><tool_call>["
    + ",".join(['{"name":"f","arguments":"{\\"a\\":1}"}'] * (_MB // 40))
    + "]</tool_call>",
    "1 MB, unhashable names": "<think>x</think><tool_call>["
    + ",".join(['{"name":[1],"arguments":{}}'] * (_MB // 28))
    + "]</tool_call>",
    "1 MB, one call per block": "<think>x</think>" + f"<tool_call>{_CALL}</tool_call>" * (_MB // (len(_CALL) + 23)),
    "1.3 MB double-encoded list": "<think>x</think><tool_call>"
    + json.dumps("[" + ", ".join([_CALL] * (_MB // (len(_CALL) + 2))) + "]")
    + "</tool_call>",
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


def cpu_ms(fn, repeat: int = 3) -> float:
    """Least CPU time of ``repeat`` calls, in milliseconds (CPU, so other processes on the machine do not count)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent per throughput row (default 1.0)")
    args = parser.parse_args(argv)

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

    print(f"\n| {'adversarial input (CPU ms, best of 3)':<46} | {'faithful ms':>12} | {'improved ms':>11} |")
    print(f"|{'-' * 48}|{'-' * 14}|{'-' * 13}|")
    for label, response in ADVERSARIAL.items():
        faithful = cpu_ms(lambda r=response: compute_score("toolcall", r, GT))
        improved = cpu_ms(lambda r=response: compute_score("toolcall", r, GT, mode="improved"))
        print(f"| {label:<46} | {faithful:>12.2f} | {improved:>11.2f} |")

    print(f"\n| {'call-dense reply (CPU ms, worst of 6 variants)':<46} | {'faithful ms':>12} | {'improved ms':>11} |")
    print(f"|{'-' * 48}|{'-' * 14}|{'-' * 13}|")
    worst = 0.0
    for label, response in CALL_DENSE.items():
        times = [
            max(
                cpu_ms(lambda r=response, v=v, m=m: compute_score("toolcall", r, GT, variant=v, mode=m))
                for v in VARIANTS
            )
            for m in ("faithful", "improved")
        ]
        worst = max(worst, *times)
        print(f"| {label:<46} | {times[0]:>12.1f} | {times[1]:>11.1f} |")
    print(f"worst call-dense reply: {worst:.1f} ms CPU")

    print(f"\n| {'ToolACE call string (CPU ms, best of 3)':<46} | {'faithful ms':>12} | {'robust ms':>11} |")
    print(f"|{'-' * 48}|{'-' * 14}|{'-' * 13}|")
    for label, text in CALL_STRINGS.items():
        if "validator" in label:
            faithful = cpu_ms(lambda t=text: is_valid_call_string(t))
        else:
            faithful = cpu_ms(lambda t=text: parse_call_string(t, mode="faithful"))
        robust = cpu_ms(lambda t=text: _robust_or_error(t))
        print(f"| {label:<46} | {faithful:>12.2f} | {robust:>11.2f} |")
    return 0


def _robust_or_error(text: str) -> None:
    try:
        parse_call_string(text, mode="robust")
    except ValueError:
        pass


if __name__ == "__main__":
    sys.exit(main())
