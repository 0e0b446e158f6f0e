"""The TRL backend's multi-turn mode: ``+ablation=multiturn`` through TRL's ``environment_factory``.

``train_trl.py`` switches to it when the config enables ``actor_rollout_ref.rollout.multi_turn`` (the multi-turn
delta does). The same config names as verl's run:

=================================================  ===========================================================
verl name (multi-turn delta)                       TRL backend
=================================================  ===========================================================
rollout.multi_turn.enable (true)                   rows -> one row per user turn, BFCL environments as TRL
                                                   environments (``tool_n1_multiturn.trl_environment``)
rollout.multi_turn.max_assistant_turns (32)        ``max_tool_calling_iterations``
rollout.multi_turn.max_tool_response_length        characters of one tool result (2048)
reward.custom_reward_function.path                 ``pkg://tool_n1.multiturn_reward``: its ``compute_score``
reward_kwargs.reward / turn_weight / mode / flags   passed to it (turn | state | turn_and_state)
rollout.multi_turn.format (tool_n1)                the tokenizer's chat template and reply parser (Tool-N1 format)
rollout.multi_turn.max_user_turns,                 not used: a TRL rollout is one user turn; calls of one reply
max_parallel_calls                                 all run
=================================================  ===========================================================
"""

from __future__ import annotations

import logging
from typing import Any

from trl_recipe import ConfigError

log = logging.getLogger("tool_n1.train_trl")
MULTI_TURN = "actor_rollout_ref.rollout.multi_turn."
REWARD_PATH = "reward.custom_reward_function.path"
MULTI_TURN_REWARD = "pkg://tool_n1.multiturn_reward"
#: keys this mode reads (not reported as ignored)
USED_KEYS = {
    MULTI_TURN + "enable",
    MULTI_TURN + "format",
    MULTI_TURN + "max_assistant_turns",
    MULTI_TURN + "max_tool_response_length",
    REWARD_PATH,
    "reward.custom_reward_function.name",
}
TURNS = ("all", "first")


def enabled(values: dict[str, Any]) -> bool:
    return bool(values.get(MULTI_TURN + "enable"))


def plan(values: dict[str, Any], reward_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The mode's settings from the config; ``ConfigError`` for a combination it cannot run."""
    fmt = values.get(MULTI_TURN + "format", "tool_n1")
    if fmt != "tool_n1":
        raise ConfigError(f"{MULTI_TURN}format={fmt!r}: the TRL backend reads the Tool-N1 reply format only")
    path = values.get(REWARD_PATH)
    if path not in (None, MULTI_TURN_REWARD):
        raise ConfigError(f"{REWARD_PATH}={path!r}: the multi-turn TRL mode scores with {MULTI_TURN_REWARD}")
    turns = values.get(MULTI_TURN + "max_assistant_turns")
    chars = values.get(MULTI_TURN + "max_tool_response_length") or 2048
    return {
        "max_tool_calling_iterations": int(turns) if turns else None,
        "max_tool_response_chars": int(chars),
        # the single-turn keys the recipe sets (variant) mean nothing to the multi-turn reward
        "reward_kwargs": {k: v for k, v in reward_kwargs.items() if v is not None and k != "variant"},
    }


def load_turn_rows(path: str, limit: int | None, turns: str):
    """The split's parquet → a ``datasets.Dataset`` with one row per user turn (``limit``: first N entries)."""
    import pyarrow.parquet as pq
    from datasets import Dataset

    from tool_n1_multiturn.trl_environment import turn_rows

    table = pq.read_table(path)
    missing = {"prompt", "reward_model", "extra_info"} - set(table.column_names)
    if missing:
        raise ConfigError(f"{path}: not a multi-turn split parquet (missing column(s) {sorted(missing)})")
    if limit is not None and limit >= 0:
        table = table.slice(0, limit)
    rows, skipped = turn_rows(table.to_pylist(), turns)
    for reason, count in skipped.items():
        log.warning("%s: skipped %d entries: %s", path, count, reason)
    log.info("%s: %d entries -> %d turn rows (turns=%s)", path, table.num_rows, len(rows), turns)
    if not rows:
        raise ConfigError(f"{path}: no usable multi-turn entries")
    return Dataset.from_list(rows)
