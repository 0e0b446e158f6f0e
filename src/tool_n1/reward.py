"""The Tool-N1 rule-based reward, as verl's custom reward function.

verl calls ``compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=..., **reward_kwargs)``;
point ``reward.custom_reward_function.path`` at this file (or ``pkg://tool_n1.reward``) and ``name`` at
``compute_score``. The paper's reward is ``variant="binary"``: 1 iff the response has reasoning tags and its tool
call (the last ``<tool_call>`` block) equals the ground truth as a multiset of ``(name, arguments)``; else 0.

Variants (the original's v0–v4 and LLaMA functions; ``extra_info["prompt_type"]`` selects one when ``variant`` is
not given, as the original dispatcher did):

============================  ==================================  =========================================
variant                       prompt_type                         values
============================  ==================================  =========================================
``binary`` (default)          ``qwen`` or missing                 {0, 1}: think tags and exact match
``lexico``                    ``qwen_lexico``                     {-0.2, 0, 1, 1.2}
``binary_no_think``           ``qwen_wo_reason``                  {0, 1}: exact match only
``partial_think``             ``qwen_partial_reason``             0.2·think + 0.8·match
``partial_think_name``        ``qwen_partial_reason_funcname``    0.2·think + 0.8·match, or +0.2 if names match
``llama``                     ``llama``                           binary on LLaMA-3 markers; no block ≡ ``[]``
============================  ==================================  =========================================

``mode="faithful"`` (default) gives the original scores on every input the original could score, including
prompt+response strings (cut at the last assistant marker). Where the original raised (a JSON number in
``<tool_call>``, a broken ground truth, an unknown ``prompt_type``), the score is 0 and ``parse_error`` says why:
this function never raises on data. ``mode="improved"`` switches on every flag of :class:`RewardOptions`; each flag
can also be set on its own (``compute_score(..., numeric_equality=True)``).

>>> gt = '[{"name": "get_weather", "arguments": {"city": "Paris"}}]'
>>> r = compute_score("toolcall", '<think>ok</think><tool_call>' + gt + '</tool_call>', gt)
>>> r["score"], r["calls_match"], r["parse_error"]
(1.0, 1.0, '')
>>> compute_score("toolcall", '<tool_call>' + gt + '</tool_call>', gt, variant="lexico")["score"]
1.0
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from tool_n1.parsing import (
    END_MARKERS,
    LLAMA_ASSISTANT_MARKER,
    MAX_BLOCKS,
    QWEN_ASSISTANT_MARKER,
    UNCAUGHT_JSON_ERRORS,
    cut_at_last_marker,
    find_blocks,
    load_json,
    select_calls,
    well_formed,
)

VARIANTS = ("binary", "lexico", "binary_no_think", "partial_think", "partial_think_name", "llama")
PROMPT_TYPE_TO_VARIANT = {
    "qwen": "binary",
    "llama": "llama",
    "qwen_lexico": "lexico",
    "qwen_wo_reason": "binary_no_think",
    "qwen_partial_reason": "partial_think",
    "qwen_partial_reason_funcname": "partial_think_name",
}
#: Keys of every result dict, always present with these types (verl takes the key list from the first sample).
RESULT_KEYS = {
    "score": float,
    "format_ok": float,
    "call_parsed": float,
    "names_match": float,
    "calls_match": float,
    "parse_error": str,
}


@dataclass(frozen=True)
class RewardOptions:
    """Fixes of the original reward's defects; all off in ``faithful`` mode, all on in ``improved`` mode."""

    #: Concatenate the calls of every ``<tool_call>`` block outside ``<think>`` (Qwen's native one-call-per-block
    #: output) instead of reading only the last block; more than :data:`MAX_BLOCKS` blocks score 0.
    native_blocks: bool = False
    #: Format = exactly one non-empty ``<think>…</think>`` at the start, then only tool-call blocks (or plain text
    #: for a no-call answer), instead of "both tag strings occur somewhere".
    strict_format: bool = False
    #: Numbers compare by value (``1 == 1.0``); booleans and strings never equal numbers.
    numeric_equality: bool = False
    #: ``"arguments"`` given as a JSON-encoded object string (OpenAI style) is decoded before comparison.
    string_arguments: bool = False
    #: A response without any ``<tool_call>`` block means "no call" and matches the ground truth ``[]``.
    text_as_no_call: bool = False


MODES = {"faithful": RewardOptions(), "improved": RewardOptions(*(True for _ in fields(RewardOptions)))}


#: ``MAX_BLOCKS`` (from :mod:`tool_n1.parsing`): with ``native_blocks`` / ``strict_format``, a response with more
#: ``<tool_call>`` blocks than this is degenerate (score 0) instead of being decoded block by block.


class _OriginalCrash(Exception):
    """Where the original reward raised; scored 0 with the reason."""


# --------------------------------------------------------------------------- comparison


def _numbers_by_value(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _numbers_by_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_by_value(v) for v in value]
    return value


def _call_key(item: Any, opts: RewardOptions) -> tuple[Any, str]:
    arguments = item["arguments"]
    if opts.string_arguments and isinstance(arguments, str):
        decoded, error = load_json(arguments)
        arguments = decoded if not error and isinstance(decoded, dict) else arguments
    if opts.numeric_equality:
        arguments = _numbers_by_value(arguments)
    return item["name"], json.dumps(arguments, sort_keys=True)


class _Truth:
    """A ground truth prepared once for comparison (cached per ground-truth string and options).

    Every step that can fail is stored as its outcome, so comparisons fail exactly where the original did.
    """

    __slots__ = ("error", "length", "full", "names")

    def __init__(self, answer: Any, opts: RewardOptions, error: str = ""):
        self.error = error
        self.length = self.full = self.names = None
        if error:
            return
        self.length = _attempt(len, answer)
        self.full = _attempt(lambda: Counter(_call_key(i, opts) for i in answer))
        self.names = _attempt(lambda: Counter(i["name"] for i in answer))


def _attempt(fn, *args) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        return exc


def match_level(result: Any, truth: _Truth, opts: RewardOptions = MODES["faithful"]) -> int:
    """2 = same multiset of calls, 1 = same multiset of names only, 0 = neither (the original's three levels).

    Raises :class:`_OriginalCrash` where the original raised (e.g. a ground-truth item without ``arguments``).
    """
    try:
        if isinstance(truth.length, Exception):
            raise truth.length
        if len(result) == 0 or truth.length == 0:
            return 2 if len(result) == truth.length else 0
        if len(result) != truth.length:
            # Multisets of different sizes are never equal, neither as calls nor as names: level 0 without
            # serialising every call of a call-dense reply. The original built both counters anyway, so its
            # outcomes are kept: an unhashable name in the reply gives 0 first, else a broken truth raises.
            if isinstance(truth.full, Exception) and not isinstance(truth.full, TypeError):
                if not any(isinstance(item["name"], (list, dict)) for item in result):
                    raise truth.full
            return 0
        try:
            full = Counter(_call_key(i, opts) for i in result)
            if isinstance(truth.full, Exception):
                raise truth.full
        except TypeError:  # an unhashable or non-dict item: the original returned 0 here
            return 0
        if full == truth.full:
            return 2
        if isinstance(truth.names, Exception):
            raise truth.names
        return 1 if Counter(i["name"] for i in result) == truth.names else 0
    except Exception as exc:
        raise _OriginalCrash(f"comparison failed: {type(exc).__name__}") from None


@lru_cache(maxsize=4096)
def _load_ground_truth(ground_truth: str, opts: RewardOptions) -> _Truth:
    """``json.loads`` (twice for a JSON string), cached: GRPO scores each ground truth ``rollout.n`` times.

    The returned value is shared between calls and must not be mutated.
    """
    answer, error = load_json(ground_truth)
    if not error and isinstance(answer, str):
        answer, error = load_json(answer)
    return _Truth(answer, opts, f"ground truth: {error}" if error else "")


# --------------------------------------------------------------------------- format


def _strict_format_ok(text: str, marker: str) -> bool:
    body = text[len(marker) :] if text.startswith(marker) else text
    body = body.strip()
    for end in END_MARKERS:
        body = body.removesuffix(end).rstrip()
    if not body.startswith("<think>") or body.count("<think>") != 1 or body.count("</think>") != 1:
        return False
    close = body.index("</think>")
    if not body[7:close].strip():
        return False
    rest = body[close + 8 :]
    pos = 0
    blocks = find_blocks(rest, "tool_call", limit=MAX_BLOCKS + 1)
    if len(blocks) > MAX_BLOCKS:
        return False
    for start, end in blocks:
        if rest[pos : start - len("<tool_call>")].strip():
            return False
        pos = end + len("</tool_call>")
    if pos == 0:  # no call: plain text is a valid no-call answer, a stray tag is not
        return "<tool_call>" not in rest and "</tool_call>" not in rest
    return not rest[pos:].strip()


# --------------------------------------------------------------------------- scoring


def _result(score, format_ok, parsed, level, error) -> dict[str, Any]:
    return {
        "score": float(score),
        "format_ok": 1.0 if format_ok else 0.0,
        "call_parsed": 1.0 if parsed else 0.0,
        "names_match": 1.0 if level >= 1 else 0.0,
        "calls_match": 1.0 if level == 2 else 0.0,
        "parse_error": error,
    }


def score_response(
    response: str, ground_truth: Any, variant: str = "binary", opts: RewardOptions = MODES["faithful"]
) -> dict[str, Any]:
    """Score one response against a ground-truth call list (JSON string or already-decoded value)."""
    marker = LLAMA_ASSISTANT_MARKER if variant == "llama" else QWEN_ASSISTANT_MARKER
    text = cut_at_last_marker(response, marker)
    if opts.strict_format:
        think = _strict_format_ok(text, marker)
    else:
        think = "<think>" in text and "</think>" in text
    if isinstance(ground_truth, str):
        truth = _load_ground_truth(ground_truth, opts)
        if truth.error:
            return _result(0, think, False, 0, truth.error)
    else:
        truth = _Truth(ground_truth, opts)

    # the block policy: the last block as the original reward, or every block outside <think> (native_blocks)
    result, error, num_blocks = select_calls(text, "all" if opts.native_blocks else "last")
    if not num_blocks:
        if variant == "llama" or opts.text_as_no_call:
            result, error = [], ""
    elif variant == "llama" and not opts.native_blocks and error.startswith("JSON string"):
        return _result(0, think, False, 0, error + " (the original LLaMA reward raised)")

    if error and (error.startswith(UNCAUGHT_JSON_ERRORS) or error.startswith("JSON string inside <tool_call>: ")):
        # json.loads raised beyond JSONDecodeError, which the original did not catch: 0 in every variant
        return _result(0, think, False, 0, error + " (the original reward raised)")
    if result is None:
        parsed = False
    elif isinstance(result, (list, str)):
        parsed = well_formed(result)
        if not parsed:
            error = "tool call is not a list of {name, arguments}"
    else:
        kind = "boolean" if isinstance(result, bool) else "number"
        return _result(0, think, False, 0, f"tool call is a JSON {kind} (the original reward raised TypeError)")

    try:
        level = match_level(result, truth, opts) if parsed else 0
    except _OriginalCrash as exc:
        return _result(0, think, parsed, 0, str(exc))

    if variant == "llama" and not num_blocks:
        score = level == 2  # the original skips the think check when there is no block at all
    elif variant == "binary" or variant == "llama":
        score = think and level == 2
    elif variant == "binary_no_think":
        score = level == 2
    elif variant == "lexico":
        if result is None:
            score = 0
        elif parsed and level == 2:
            score = 1.2 if think else 1
        else:
            score = -0.2 if think else 0
    else:  # partial_think, partial_think_name
        score = 0.2 if think else 0
        if level == 2:
            score += 0.8
        elif level == 1 and variant == "partial_think_name":
            score += 0.2
    return _result(score, think, parsed, level, error)


@lru_cache(maxsize=64)
def resolve_options(mode: str = "faithful", **flags: bool | None) -> RewardOptions:
    """The options of ``mode`` with explicit flags (not ``None``) overriding; ``ValueError`` for an unknown mode."""
    if mode not in MODES:
        raise ValueError(f"unknown reward mode {mode!r}; valid modes: {', '.join(MODES)}")
    base = MODES[mode]
    changes = {name: value for name, value in flags.items() if value is not None}
    return RewardOptions(**{f.name: changes.get(f.name, getattr(base, f.name)) for f in fields(RewardOptions)})


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    *,
    variant: str | None = None,
    mode: str = "faithful",
    native_blocks: bool | None = None,
    strict_format: bool | None = None,
    numeric_equality: bool | None = None,
    string_arguments: bool | None = None,
    text_as_no_call: bool | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """verl entry point. Returns ``{"score": float, ...}`` with the keys of :data:`RESULT_KEYS` on every call.

    An unknown ``variant`` or ``mode`` is a configuration error (``ValueError``); nothing in the data
    (``solution_str``, ``ground_truth``, ``extra_info``) ever makes it raise. Other keyword arguments that verl may
    pass are ignored.
    """
    flags = (native_blocks, strict_format, numeric_equality, string_arguments, text_as_no_call)
    if mode in MODES and flags == (None, None, None, None, None):
        opts = MODES[mode]
    else:
        opts = resolve_options(
            mode,
            native_blocks=native_blocks,
            strict_format=strict_format,
            numeric_equality=numeric_equality,
            string_arguments=string_arguments,
            text_as_no_call=text_as_no_call,
        )
    if variant is None:
        prompt_type = extra_info.get("prompt_type") if isinstance(extra_info, dict) else None
        if prompt_type is None and not (isinstance(extra_info, dict) and "prompt_type" in extra_info):
            variant = "binary"
        elif isinstance(prompt_type, str) and prompt_type in PROMPT_TYPE_TO_VARIANT:
            variant = PROMPT_TYPE_TO_VARIANT[prompt_type]
        else:  # any other value, hashable or not (a list, a dict), is an unknown name
            valid = ", ".join(PROMPT_TYPE_TO_VARIANT)
            shown = repr(prompt_type[:80]) if isinstance(prompt_type, str) else f"of type {type(prompt_type).__name__}"
            return _result(0, False, False, 0, f"unknown prompt_type {shown} (valid: {valid})")
    elif variant not in VARIANTS:
        raise ValueError(f"unknown reward variant {variant!r}; valid variants: {', '.join(VARIANTS)}")
    if not isinstance(solution_str, str):
        return _result(0, False, False, 0, f"response is a {type(solution_str).__name__}, not a string")
    return score_response(solution_str, ground_truth, variant, opts)
