"""verl's console logger lines (``step:N - key:value - ...``) as numbers, for tests and benchmarks that run
``verl/train_qwen.sh`` and read what it printed."""

from __future__ import annotations

import ast


def parse_step_metrics(log: str) -> dict[int, dict[str, float]]:
    """``step:N - key:value - ...`` lines of a verl log -> ``{N: {key: value}}`` (numbers only; ``np.float64(x)``
    is read as ``x``; other values are skipped)."""
    steps: dict[int, dict[str, float]] = {}
    for line in log.splitlines():
        at = line.find("step:")
        if at < 0 or " - " not in line[at:]:
            continue
        metrics = {}
        for part in line[at:].split(" - "):
            key, sep, value = part.strip().partition(":")
            if not sep:
                continue
            value = value.strip()
            if value.startswith("np.float"):
                value = value[value.index("(") + 1 : value.rindex(")")]
            try:
                metrics[key] = float(ast.literal_eval(value))
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
        if "step" in metrics:
            steps.setdefault(int(metrics["step"]), {}).update(metrics)
    return steps
