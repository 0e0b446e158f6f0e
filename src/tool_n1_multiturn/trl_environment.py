"""BFCL multi-turn environments in TRL's ``GRPOTrainer`` (``environment_factory``): executed calls on one machine.

TRL 1.16 runs a rollout as one user turn: generate, execute the reply's tool calls through the environment's methods,
append the results, generate again, until a reply has no call. It has no hook for a later user turn, so here each
**user turn of a BFCL entry is its own training row**: the prompt is the entry's system prompt, the earlier user turns
with the ground truth's calls for them (one Tool-N1 reply per turn, bfcl-eval's real results, a short closing reply),
and the turn's user message; :meth:`BfclTrlEnvironment.reset` builds the entry's environment from its initial config
and replays the ground truth of the earlier turns, so the state matches the history the model reads. The rewards are
the multi-turn ones (:mod:`tool_n1.multiturn_reward`) on that turn: ``turn`` (the paper's binary reward on the turn),
``state`` (bfcl-eval's state checker against the ground truth executed through this turn), ``turn_and_state``.

Pieces, each on TRL's or transformers' own extension point:

* :func:`environment_factories` — one environment class per set of BFCL classes (TRL's multi-environment mode; a row's
  ``environment`` column names it). Its public methods are the classes' functions, generated from BFCL's function
  documents with type hints and Google docstrings (what TRL and ``transformers.get_json_schema`` read); a call runs
  only through :meth:`tool_n1_multiturn.environment.BfclEnvironment.execute` (``tool_n1.bfcl_decode``'s checks, then
  a direct method call with literal arguments; nothing the model writes reaches ``eval``).
* :func:`use_tool_n1_format` — the tokenizer reads and writes the Tool-N1 reply format: its chat template renders a
  conversation exactly as the BFCL evaluation's handler does (``tool_n1.prompts.chatml``: tool results as ``tool``
  turns; the tools are listed in the row's system prompt, so the template ignores ``tools=``), and its
  ``parse_response`` (what TRL calls to find tool calls) is the reward's parser,
  :func:`tool_n1.parsing.parse_response`.
* :class:`MultiTurnReward` — a TRL reward function: the turn's reply texts and the environment's record, scored by
  :func:`tool_n1.multiturn_reward.compute_score`.
* :func:`turn_rows` — the split's verl rows (``data_process/bfcl_multiturn_split.py``) → one row per user turn.

Used by ``verl/train_trl.py`` when the config enables ``actor_rollout_ref.rollout.multi_turn``
(``+ablation=multiturn``).
Needs ``bfcl-eval``; no TRL import here.
"""

from __future__ import annotations

import inspect
import json
import keyword
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tool_n1.parsing import parse_response
from tool_n1.prompts import format_response
from tool_n1_multiturn.environment import (
    ERROR_PREFIX,
    BfclEnvironment,
    class_methods,
    function_docs,
)

#: ``extra_info`` keys: the entry's environment spec (JSON, as the verl rows) and the user turn of a TRL row
SPEC_KEY = "bfcl"
TURN_KEY = "bfcl_turn"
#: the reply that closes an earlier turn in a row's history (the evaluation's model writes one before the next turn)
CLOSING_REPLY = "<think>The request is done.</think>Done."
#: verl's ``multi_turn.max_tool_response_length`` default of the multi-turn delta (characters of one tool result)
MAX_TOOL_RESPONSE_CHARS = 2048

#: The BFCL handler's prompt assembly (``tool_n1.prompts.chatml``) as a chat template; an assistant message's
#: ``tool_calls`` (TRL renders them to find the tool-result tokens) in the Tool-N1 reply format.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') -}}"
    "{%- if message['role'] == 'assistant' and message['tool_calls'] is defined and message['tool_calls'] -%}"
    "{{- '<tool_call>[' -}}"
    "{%- for call in message['tool_calls'] -%}"
    "{%- set function = call['function'] if call['function'] is defined else call -%}"
    "{%- set arguments = function['arguments'] if function['arguments'] is string "
    "else (function['arguments'] | tojson) -%}"
    "{{- ('' if loop.first else ', ') + '{\"name\": ' + (function['name'] | tojson) + ', \"arguments\": ' "
    "+ arguments + '}' -}}"
    "{%- endfor -%}"
    "{{- ']</tool_call>' -}}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
#: The Tool-N1 reply format as a transformers response schema (first ``<tool_call>`` block, a JSON list of
#: ``{"name", "arguments"}``). TRL parses replies only when the tokenizer has one, and a saved tokenizer keeps it, so
#: ``tokenizer.parse_response`` works on the trained model's folder. During training the parsing itself is
#: :class:`ToolN1ResponseParser` (the reward's parser and block policy, linear time on any reply).
RESPONSE_SCHEMA = {
    "type": "object",
    "properties": {
        "role": {"const": "assistant"},
        "content": {"type": "string", "x-regex": r"^(.*)$"},
        "tool_calls": {
            "type": "array",
            "x-regex": r"<tool_call>\s*(\[.*?\])\s*</tool_call>",
            "x-parser": "json",
            "x-parser-args": {"transform": "[*].{type: 'function', function: @}"},
            "items": {
                "type": "object",
                "properties": {
                    "type": {"const": "function"},
                    "function": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "arguments": {"type": "object", "additionalProperties": {}},
                        },
                    },
                },
            },
        },
    },
}

_PY_TYPES = {
    "string": str,
    "integer": int,
    "float": float,
    "number": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "object": dict,
}


class ToolN1ResponseParser:
    """``tokenizer.parse_response``: a reply's text and its Tool-N1 calls as an OpenAI-style assistant message.

    ``content`` is the whole decoded reply (think block and call list included), so the reward sees what the model
    wrote; ``tool_calls`` holds the well-formed calls of the ``block`` policy's block (none when it does not parse).
    """

    def __init__(self, tokenizer, block: str = "last"):
        self.tokenizer = tokenizer
        self.block = block

    def __call__(self, response: Any, schema: Any = None) -> dict[str, Any]:
        text = response if isinstance(response, str) else self.tokenizer.decode(response, skip_special_tokens=True)
        calls = []
        for call in parse_response(text, block=self.block).calls or []:
            if isinstance(call.get("name"), str) and isinstance(call.get("arguments"), dict):
                calls.append({"type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}})
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = calls
        return message


def use_tool_n1_format(tokenizer, block: str = "last"):
    """Give ``tokenizer`` the evaluation's chat template and the Tool-N1 reply parser (returns it)."""
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.response_schema = RESPONSE_SCHEMA
    tokenizer.parse_response = ToolN1ResponseParser(tokenizer, block)
    return tokenizer


def _one_line(text: Any) -> str:
    words = " ".join(str(text or "").split())
    # a section header inside a description would end the docstring's Args block for transformers' parser
    return words.replace("Args:", "Args -").replace("Returns:", "Returns -") or "value"


def tool_method(name: str, doc: Mapping[str, Any]) -> Callable[..., str]:
    """One BFCL function as an environment method: typed keyword parameters and a Google docstring from BFCL's
    function document; the body hands the call to the trajectory's environment."""
    parameters = doc.get("parameters") or {}
    properties = parameters.get("properties") or {}
    required = set(parameters.get("required") or [])

    def method(self, **arguments: Any) -> str:
        return self._call(name, arguments)

    signature = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    arg_lines = []
    for param, spec in properties.items():
        if not isinstance(param, str) or not param.isidentifier() or keyword.iskeyword(param):
            continue
        spec = spec if isinstance(spec, Mapping) else {}
        hint = _PY_TYPES.get(spec.get("type"), str)
        annotations[param] = hint
        default = inspect.Parameter.empty if param in required else None
        signature.append(inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint))
        arg_lines.append(f"    {param}: {_one_line(spec.get('description'))}")
    annotations["return"] = str
    method.__name__ = method.__qualname__ = name
    method.__signature__ = inspect.Signature(signature, return_annotation=str)
    method.__annotations__ = annotations
    method.__doc__ = (
        _one_line(doc.get("description") or name)
        + ("\n\nArgs:\n" + "\n".join(arg_lines) if arg_lines else "")
        + "\n\nReturns:\n    The function's result as bfcl-eval's executor writes it."
    )
    return method


class TurnEpisode:
    """One row's environment: the entry's classes after the ground truth of the earlier turns."""

    def __init__(self, spec: Mapping[str, Any], turn: int):
        self.spec = spec
        self.turn = turn
        classes = spec["involved_classes"]
        self.env = BfclEnvironment(spec["initial_config"], classes, bool(spec.get("long_context", False)))
        for calls in spec.get("ground_truth", [])[:turn]:
            for call in calls:
                self.env.execute_string(call)
        self.replayed = len(self.env.executed)
        self.initial_state = self.env.snapshot()

    def record(self, texts: list[str]) -> dict[str, Any]:
        """The trajectory record :mod:`tool_n1.multiturn_reward` scores (one turn: this row's)."""
        spec = self.spec
        truth = BfclEnvironment(spec["initial_config"], spec["involved_classes"], bool(spec.get("long_context")))
        for calls in spec.get("ground_truth", [])[: self.turn + 1]:
            for call in calls:
                truth.execute_string(call)
        calls = self.env.executed[self.replayed :]
        return {
            "id": str(spec.get("id", "")),
            "error": "",
            "turns": [{"texts": texts, "calls": calls, "state_ok": self.env.state_matches(truth)}],
            "num_turns": 1,
            "calls_executed": len(calls),
            "state_changed": self.env.snapshot() != self.initial_state,
        }


class BfclTrlEnvironment:
    """Base of the generated environment classes (TRL: every public method but ``reset`` is a tool)."""

    max_tool_response_chars = MAX_TOOL_RESPONSE_CHARS

    def __init__(self):
        self._episode: TurnEpisode | None = None
        self._error = ""

    def reset(self, **row: Any) -> None:
        """Build this rollout's environment from the row's ``extra_info`` (a bad row: every call returns the error)."""
        self._episode, self._error = None, ""
        try:
            info = row.get("extra_info") or {}
            spec = info[SPEC_KEY]
            spec = json.loads(spec) if isinstance(spec, str) else spec
            self._episode = TurnEpisode(spec, int(info.get(TURN_KEY) or 0))
        except Exception as exc:  # a bad row scores 0, never ends the run
            self._error = f"bad BFCL spec: {type(exc).__name__}: {str(exc)[:200]}"
        return None

    def _call(self, name: str, arguments: dict[str, Any]) -> str:
        if self._episode is None:
            return f"{ERROR_PREFIX}{self._error or 'no BFCL environment for this rollout'}"
        return self._episode.env.execute(name, arguments)[: self.max_tool_response_chars]

    def _record(self, texts: list[str]) -> dict[str, Any]:
        if self._episode is None:
            return {"error": self._error or "environment not reset", "turns": [], "calls_executed": 0}
        return self._episode.record(texts)

    @property
    def _env(self) -> BfclEnvironment | None:
        return self._episode.env if self._episode is not None else None


def environment_name(involved_classes: Iterable[str]) -> str:
    return "+".join(involved_classes)


def environment_class(involved_classes: Iterable[str]) -> type[BfclTrlEnvironment]:
    """A :class:`BfclTrlEnvironment` subclass whose methods are the functions of ``involved_classes``."""
    classes = tuple(involved_classes)
    methods: dict[str, Any] = {}
    for class_name in classes:
        for doc in function_docs(class_name):
            if doc["name"] in class_methods(class_name) and doc["name"] not in methods:
                methods[doc["name"]] = tool_method(doc["name"], doc)
    name = "Bfcl_" + "_".join(classes)
    return type(name, (BfclTrlEnvironment,), {**methods, "__doc__": f"BFCL environment: {', '.join(classes)}."})


def environment_factories(rows: Iterable[Mapping[str, Any]]) -> dict[str, type[BfclTrlEnvironment]]:
    """TRL's ``environment_factory`` dict for the rows' ``environment`` names (a class is its own factory)."""
    factories: dict[str, type[BfclTrlEnvironment]] = {}
    for row in rows:
        name = row["environment"]
        if name not in factories:
            factories[name] = environment_class(name.split("+"))
    return factories


def turn_rows(rows: Iterable[Mapping[str, Any]], turns: str = "all") -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The split's verl rows → one TRL row per user turn (``turns="first"``: only each entry's first turn).

    Returns (rows, skipped reasons). The history of turn k: each earlier user turn, the ground truth's calls for it
    as one Tool-N1 reply, bfcl-eval's result of each call as a ``tool`` message, and :data:`CLOSING_REPLY`.
    """
    out: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    for row in rows:
        try:
            spec = json.loads(row["extra_info"][SPEC_KEY])
            truth = json.loads(row["reward_model"]["ground_truth"])
            user_turns = [list(row["prompt"][1:]), *spec.get("next_turns", [])]
            if len(user_turns) != len(truth):
                raise ValueError(f"{len(user_turns)} user turns but {len(truth)} ground-truth turns")
            env = BfclEnvironment(spec["initial_config"], spec["involved_classes"], bool(spec.get("long_context")))
        except (KeyError, TypeError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {str(exc)[:80]}"
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        history = [dict(row["prompt"][0])]
        for index, user in enumerate(user_turns[: 1 if turns == "first" else None]):
            history += [{"role": m["role"], "content": m["content"]} for m in user]
            info = {**row["extra_info"], TURN_KEY: index, "id": f"{spec.get('id', '')}:{index}"}
            out.append(
                {
                    "prompt": [dict(m) for m in history],
                    "data_source": row.get("data_source", "bfcl_multi_turn"),
                    "reward_model": {"style": "rule", "ground_truth": json.dumps(truth)},
                    "extra_info": info,
                    "environment": environment_name(spec["involved_classes"]),
                }
            )
            calls = truth[index]
            if calls:
                history.append({"role": "assistant", "content": format_response(calls)})
                for text in spec["ground_truth"][index]:
                    history.append({"role": "tool", "content": env.execute_string(text)[:MAX_TOOL_RESPONSE_CHARS]})
            history.append({"role": "assistant", "content": CLOSING_REPLY})
    return out, skipped


class MultiTurnReward:
    """TRL reward function: the rollout's replies + its environment's record → ``multiturn_reward.compute_score``.

    Called with ``completions`` (the assistant and tool messages of each rollout), ``environments`` (TRL passes each
    rollout's instance) and the row columns. The score is that of the row's user turn only. Means of
    ``turn_reward``, ``state_reward``, ``format_ok``, ``calls_executed``, ``state_changed`` are logged.
    """

    __name__ = "tool_n1_multiturn"
    LOGGED = ("turn_reward", "state_reward", "format_ok", "calls_executed", "state_changed")

    def __init__(self, kwargs: Mapping[str, Any], score_fn: Callable[..., dict] | None = None):
        if score_fn is None:
            from tool_n1.multiturn_reward import compute_score as score_fn
        self.kwargs = dict(kwargs)
        self.score_fn = score_fn

    def __call__(self, prompts, completions, environments=None, **columns) -> list[float]:
        count = len(completions)
        models = columns.get("reward_model") or [None] * count
        infos = columns.get("extra_info") or [None] * count
        sources = columns.get("data_source") or ["bfcl_multi_turn"] * count
        environments = environments or [None] * count
        scores, sums = [], dict.fromkeys(self.LOGGED, 0.0)
        for completion, env, model, info, source in zip(
            completions, environments, models, infos, sources, strict=True
        ):
            messages = completion if isinstance(completion, list) else [{"role": "assistant", "content": completion}]
            texts = [m.get("content") or "" for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
            record = env._record(texts) if isinstance(env, BfclTrlEnvironment) else {"error": "no environment"}
            try:
                turn = int(info.get(TURN_KEY) or 0)
                truth = json.loads(model["ground_truth"])[turn : turn + 1]
            except (AttributeError, TypeError, KeyError, ValueError, RecursionError):
                truth = "not a list of turns"
            result = self.score_fn(source, "", truth, {"bfcl_trajectory": json.dumps(record)}, **self.kwargs)
            scores.append(float(result["score"]))
            for key in self.LOGGED:
                sums[key] += float(result.get(key, 0.0))
        log_metric = columns.get("log_metric")
        if log_metric is not None and count:
            for key, total in sums.items():
                log_metric(f"tool_n1/{key}", total / count)
        return scores
