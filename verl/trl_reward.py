"""The Tool-N1 reward as a TRL reward function: ``tool_n1.reward.compute_score`` on verl-style decoded text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ToolN1Reward:
    """TRL reward function around ``compute_score``: decodes the completion tokens like verl and scores each row.

    TRL calls it with ``prompts, completions, completion_ids`` and every dataset column (``reward_model``,
    ``extra_info``, ``data_source``) repeated per completion. The completion text is the decoded completion ids
    (``skip_special_tokens=True``, as verl decodes responses), not TRL's parsed message, so a tokenizer with a
    response schema cannot strip the ``<tool_call>`` block. The other result keys are logged as means
    (``tool_n1/format_ok``, ``tool_n1/calls_match``, ...).
    """

    __name__ = "tool_n1"
    LOGGED = ("format_ok", "call_parsed", "names_match", "calls_match")

    def __init__(self, tokenizer, kwargs: dict[str, Any], score_fn: Callable[..., dict] | None = None):
        if score_fn is None:
            from tool_n1.reward import compute_score as score_fn
        self.tokenizer = tokenizer
        self.kwargs = dict(kwargs)
        self.score_fn = score_fn

    def texts(self, completions, completion_ids) -> list[str]:
        if completion_ids is not None:
            return self.tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        return [c[-1]["content"] if isinstance(c, list) else c for c in completions]

    def __call__(self, prompts, completions, completion_ids=None, **columns) -> list[float]:
        texts = self.texts(completions, completion_ids)
        count = len(texts)
        sources = columns.get("data_source") or ["toolcall"] * count
        models = columns.get("reward_model") or [None] * count
        infos = columns.get("extra_info") or [None] * count
        scores, sums, errors = [], dict.fromkeys(self.LOGGED, 0.0), 0
        for text, source, model, info in zip(texts, sources, models, infos, strict=True):
            truth = model.get("ground_truth") if isinstance(model, dict) else None
            result = self.score_fn(source, text, truth, info, **self.kwargs)
            scores.append(float(result["score"]))
            for key in self.LOGGED:
                sums[key] += float(result.get(key, 0.0))
            errors += bool(result.get("parse_error"))
        log_metric = columns.get("log_metric")
        if log_metric is not None and count:
            for key, total in sums.items():
                log_metric(f"tool_n1/{key}", total / count)
            log_metric("tool_n1/parse_error", errors / count)
        return scores
