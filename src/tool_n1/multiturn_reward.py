"""Rewards for multi-turn trajectories with executed tools (BFCL environments), as verl's custom reward function.

The agent loop (:mod:`tool_n1_multiturn.agent_loop`) records each trajectory in ``extra_info["bfcl_trajectory"]``
(a JSON string): per user turn the reply texts of every generation step, the calls executed, and bfcl-eval's state
check of the environment against the ground truth executed up to that turn. ``ground_truth`` is the per-turn list of
ground-truth calls, ``[[{"name", "arguments"}, ...], ...]`` (``data_process/bfcl_multiturn_split.py`` writes it).
Point ``reward.custom_reward_function.path`` at ``pkg://tool_n1.multiturn_reward`` and select with
``reward_kwargs.reward``:

==================  ===========================================================================================
``turn`` (default)  the paper's binary reward applied turn by turn, averaged over the entry's user turns: a turn
                    scores 1 iff every reply of the turn passes the format check and the calls of all its replies
                    together equal the ground-truth turn as a multiset of ``(name, arguments)`` (the single-turn
                    reward's comparison, :func:`tool_n1.reward.match_level`); a turn never reached scores 0
``state``           1 iff every user turn was reached and, after the last one, the environment's state equals the
                    ground truth's (bfcl-eval's ``state_checker``, run in the agent loop); else 0
``turn_and_state``  ``turn_weight · turn + (1 - turn_weight) · state`` (default weight 0.5): per-turn credit for
                    the right calls, plus the outcome the benchmark checks, which also credits a different call
                    sequence that reaches the same state
==================  ===========================================================================================

``mode`` / the :class:`tool_n1.reward.RewardOptions` flags apply to the per-turn check exactly as in the single-turn
reward (``faithful``: think tags anywhere, the last ``<tool_call>`` block of each reply). Every result has the keys
of :data:`RESULT_KEYS`; nothing in the data makes it raise (a missing or broken record scores 0 with
``parse_error`` saying why).

>>> import json
>>> gt = '[[{"name": "ls", "arguments": {}}]]'
>>> reply = '<think>look</think><tool_call>[{"name": "ls", "arguments": {}}]</tool_call>'
>>> record = {"turns": [{"texts": [reply, "<think>done</think>Listed."], "state_ok": True}], "calls_executed": 1}
>>> r = compute_score("bfcl_multi_turn", "", gt, {"bfcl_trajectory": json.dumps(record)})
>>> r["score"], r["turn_reward"], r["state_reward"]
(1.0, 1.0, 1.0)
"""

from __future__ import annotations

from typing import Any

from tool_n1.parsing import QWEN_ASSISTANT_MARKER, cut_at_last_marker, load_json, select_calls, well_formed
from tool_n1.reward import (
    MODES,
    RewardOptions,
    _OriginalCrash,
    _strict_format_ok,
    _Truth,
    match_level,
    resolve_options,
)

REWARDS = ("turn", "state", "turn_and_state")
RECORD_KEY = "bfcl_trajectory"
#: Keys of every result dict, always present with these types (verl takes the key list from the first sample).
RESULT_KEYS = {
    "score": float,
    "turn_reward": float,
    "state_reward": float,
    "turns_correct": float,
    "turns_total": float,
    "format_ok": float,
    "calls_executed": float,
    "state_changed": float,
    "parse_error": str,
}


def _result(**values: Any) -> dict[str, Any]:
    out = {key: kind() for key, kind in RESULT_KEYS.items()}
    for key, value in values.items():
        out[key] = RESULT_KEYS[key](value)
    return out


def reply_format_ok(text: str, opts: RewardOptions) -> bool:
    """The single-turn reward's format check on one reply."""
    text = cut_at_last_marker(text, QWEN_ASSISTANT_MARKER)
    if opts.strict_format:
        return _strict_format_ok(text, QWEN_ASSISTANT_MARKER)
    return "<think>" in text and "</think>" in text


def reply_calls(text: str, opts: RewardOptions) -> list[Any] | None:
    """The reply's calls (``[]`` for a reply without a ``<tool_call>`` block; ``None`` when it does not parse)."""
    calls, _error, num_blocks = select_calls(cut_at_last_marker(text), "all" if opts.native_blocks else "last")
    if not num_blocks:
        return []
    if calls is None or not isinstance(calls, list) or not well_formed(calls):
        return None
    return calls


def turn_correct(texts: list[Any], truth: Any, opts: RewardOptions) -> tuple[bool, bool]:
    """(format ok on every reply, calls of all replies == the ground-truth turn) for one user turn."""
    if not texts or not all(isinstance(t, str) for t in texts):
        return False, False
    format_ok = all(reply_format_ok(t, opts) for t in texts)
    calls: list[Any] = []
    for text in texts:
        found = reply_calls(text, opts)
        if found is None:
            return format_ok, False
        calls.extend(found)
    try:
        return format_ok, match_level(calls, _Truth(truth, opts), opts) == 2
    except _OriginalCrash:
        return format_ok, False


def score_trajectory(
    record: dict[str, Any], truth_turns: list[Any], reward: str, opts: RewardOptions, turn_weight: float
) -> dict[str, Any]:
    turns = record.get("turns") if isinstance(record.get("turns"), list) else []
    correct, formats = 0, []
    for index, truth in enumerate(truth_turns):
        turn = turns[index] if index < len(turns) and isinstance(turns[index], dict) else {}
        format_ok, calls_ok = turn_correct(turn.get("texts") or [], truth, opts)
        formats.append(format_ok)
        correct += format_ok and calls_ok
    total = len(truth_turns)
    turn_reward = correct / total if total else 0.0
    last = turns[total - 1] if 0 < total <= len(turns) and isinstance(turns[total - 1], dict) else {}
    state_reward = 1.0 if last.get("state_ok") is True else 0.0
    score = {"turn": turn_reward, "state": state_reward}.get(reward)
    if score is None:
        score = turn_weight * turn_reward + (1 - turn_weight) * state_reward
    executed = record.get("calls_executed")
    return _result(
        score=score,
        turn_reward=turn_reward,
        state_reward=state_reward,
        turns_correct=correct,
        turns_total=total,
        format_ok=sum(formats) / total if total else 0.0,
        calls_executed=executed if isinstance(executed, int) and not isinstance(executed, bool) else 0,
        state_changed=record.get("state_changed") is True,
        parse_error=str(record.get("error") or "")[:300],
    )


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    *,
    reward: str = "turn",
    turn_weight: float = 0.5,
    mode: str = "faithful",
    native_blocks: bool | None = None,
    strict_format: bool | None = None,
    numeric_equality: bool | None = None,
    string_arguments: bool | None = None,
    text_as_no_call: bool | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """verl entry point (``solution_str`` is unused: the record holds every reply of every turn).

    An unknown ``reward`` or ``mode`` or a ``turn_weight`` outside [0, 1] is a configuration error
    (``ValueError``); nothing in the data makes it raise.
    """
    if reward not in REWARDS:
        raise ValueError(f"unknown multi-turn reward {reward!r}; valid: {', '.join(REWARDS)}")
    if not 0.0 <= turn_weight <= 1.0:
        raise ValueError(f"turn_weight must be in [0, 1], got {turn_weight!r}")
    flags = {
        "native_blocks": native_blocks,
        "strict_format": strict_format,
        "numeric_equality": numeric_equality,
        "string_arguments": string_arguments,
        "text_as_no_call": text_as_no_call,
    }
    opts = MODES[mode] if mode in MODES and set(flags.values()) == {None} else resolve_options(mode, **flags)
    try:
        raw = extra_info.get(RECORD_KEY) if isinstance(extra_info, dict) else None
        record, error = load_json(raw) if isinstance(raw, str) else (None, f"no {RECORD_KEY} in extra_info")
        if error or not isinstance(record, dict):
            return _result(parse_error=f"trajectory record: {error or 'not an object'}")
        truth, error = (ground_truth, "") if isinstance(ground_truth, list) else load_json(ground_truth)
        if not error and isinstance(truth, str):
            truth, error = load_json(truth)
        if error or not isinstance(truth, list) or not all(isinstance(t, list) for t in truth):
            return _result(parse_error=f"ground truth: {error or 'not a list of turns'}")
        return score_trajectory(record, truth, reward, opts, turn_weight)
    except (RecursionError, MemoryError, TypeError, ValueError, AttributeError) as exc:
        return _result(parse_error=f"unscorable record: {type(exc).__name__}")
