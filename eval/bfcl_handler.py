"""A bfcl-eval (2026.3.23) handler for Tool-N1 checkpoints: our prompts, the reward's parser.

Prompt (``--prompt``):

* ``train`` (default): the RL training system message, :func:`tool_n1.prompts.training_system_prompt` with the
  xLAM preamble, in the data pipeline's mode (``--data-mode``): ``improved`` (the pipeline's default: the duplicated
  "Here is a list of functions…" sentence removed, every tool through :func:`tool_n1.schema.normalize_tool`) or
  ``faithful`` (the original's text, tools as given). Pick the mode the checkpoint's training data was built in.
* ``bfcl``: the original handler's prompt, byte-exact (:func:`tool_n1.prompts.bfcl_system_prompt`).

Both are assembled as ChatML by hand like the original (assistant messages with ``None`` content skipped except at
index 1) and sent to the **completions** endpoint. ``--system replace`` (default, as the original) drops a test
entry's own system message; ``keep`` appends its text after ours (49 live AST and 42 live_irrelevance entries carry
one). BFCL's own default system prompt is never inserted.

Decoding (:mod:`tool_n1.bfcl_decode`): the raw completion text is stored as the result; ``decode_ast`` /
``decode_execute`` read it with :func:`tool_n1.parsing.parse_response` and the block policy ``--block``: ``last`` (the
training reward; default with ``train``) or ``first`` (the original handler; default with ``bfcl``). The pairing
that reproduces the paper's evaluation is ``--prompt bfcl --block first --system replace``.

Execution (multi-turn and memory categories): ``decode_execute`` lets through only functions of the entry's own API
classes while the entry is being generated (:meth:`ToolN1Handler.inference` records them per thread) and of any
BFCL API class at evaluation time, and importing this module installs :mod:`bfcl_executor_guard`, which re-checks
every string against the entry's classes just before bfcl-eval's executor would ``eval`` it.

Importing this module imports ``bfcl_eval``: set ``BFCL_PROJECT_ROOT`` first (``run_bfcl.py`` does).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import bfcl_executor_guard
from bfcl_eval.model_handler.local_inference.base_oss_handler import OSSHandler
from overrides import override

from tool_n1 import bfcl_decode
from tool_n1.prompts import DEFAULT_PREAMBLE, bfcl_system_prompt, chatml, training_system_prompt
from tool_n1.schema import normalize_tool

PROMPTS = ("train", "bfcl")
DATA_MODES = ("improved", "faithful")
BLOCKS = ("last", "first")
SYSTEM_POLICIES = ("replace", "keep")
DEFAULT_BLOCK = {"train": "last", "bfcl": "first"}

bfcl_executor_guard.install()
_entry_context = threading.local()  # generation runs one entry per worker thread at a time


@dataclass(frozen=True)
class HandlerOptions:
    prompt: str = "train"
    data_mode: str = "improved"
    block: str | None = None  # None: paired with the prompt (DEFAULT_BLOCK)
    system: str = "replace"
    max_tokens: int = 4096  # BFCL's cap on new tokens (Tool-N1 RL allowed 8192)
    seed: int | None = None  # sent with every request (sampling runs of --seeds); None: not sent

    def __post_init__(self) -> None:
        for name, valid in (("prompt", PROMPTS), ("data_mode", DATA_MODES), ("system", SYSTEM_POLICIES)):
            if getattr(self, name) not in valid:
                raise ValueError(f"{name}={getattr(self, name)!r}; valid: {', '.join(valid)}")
        if self.block is None:
            object.__setattr__(self, "block", DEFAULT_BLOCK[self.prompt])
        if self.block not in BLOCKS:
            raise ValueError(f"block={self.block!r}; valid: {', '.join(BLOCKS)}")
        if not 1 <= self.max_tokens <= 1_000_000:
            raise ValueError(f"max_tokens={self.max_tokens} out of range")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def system_message(options: HandlerOptions, functions: list[dict[str, Any]], entry_system: str | None = None) -> str:
    """Our system message for ``functions`` (BFCL docs, language hints included)."""
    if options.prompt == "bfcl":
        text = bfcl_system_prompt(functions)
    elif options.data_mode == "improved":
        text = training_system_prompt([normalize_tool(f) for f in functions], DEFAULT_PREAMBLE, dedupe=True)
    else:
        text = training_system_prompt(functions, DEFAULT_PREAMBLE)
    if options.system == "keep" and entry_system:
        text += "\n\n" + entry_system
    return text


def format_prompt(options: HandlerOptions, messages: list[dict[str, Any]], functions: list[dict[str, Any]]) -> str:
    """The full completions prompt: our system message + the entry's turns as ChatML + the assistant header."""
    entry_system = None
    if messages and messages[0].get("role") == "system":
        entry_system, messages = messages[0].get("content"), messages[1:]
    full = [{"role": "system", "content": system_message(options, functions, entry_system)}, *messages]
    kept = [m for i, m in enumerate(full) if i == 1 or not (m["role"] == "assistant" and m.get("content") is None)]
    return chatml([{"role": m["role"], "content": m.get("content")} for m in kept])


class ToolN1Handler(OSSHandler):
    """Prompting handler; the options live on subclasses made by :func:`handler_class`."""

    options = HandlerOptions()
    #: model name sent with every request (``run_bfcl.py generate --served-model``); None: bfcl's model path or id
    served_model: str | None = None

    @override
    def inference(self, test_entry: dict, include_input_log: bool, exclude_state_log: bool):
        _entry_context.allowed = bfcl_executor_guard.allowed_methods(test_entry.get("involved_classes") or ())
        try:
            return super().inference(test_entry, include_input_log, exclude_state_log)
        finally:
            _entry_context.allowed = None

    @override
    def _pre_query_processing_prompting(self, test_entry: dict) -> dict:
        return {"message": [], "function": test_entry["function"]}  # no BFCL system prompt: ours is in the prompt

    @override
    def _format_prompt(self, messages, function):
        return format_prompt(self.options, messages, function)

    @override
    def _query_prompting(self, inference_data: dict):
        prompt = self._format_prompt(inference_data["message"], inference_data["function"])
        inference_data["inference_input_log"] = {"formatted_prompt": prompt}
        prompt_tokens = len(self.tokenizer.tokenize(prompt))
        room = self.max_context_length - prompt_tokens - 2
        max_tokens = min(self.options.max_tokens, room) if room > 0 else 1000  # over-long: the server will refuse
        extra = {} if self.options.seed is None else {"seed": self.options.seed}
        start = time.time()
        response = self.client.completions.create(
            model=self.served_model or self.model_path_or_id,
            temperature=self.temperature,
            prompt=prompt,
            max_tokens=max_tokens,
            timeout=3600,
            **extra,
        )
        return response, time.time() - start

    @override
    def _parse_query_response_prompting(self, api_response: Any) -> dict:
        usage = getattr(api_response, "usage", None)
        return {
            "model_responses": api_response.choices[0].text or "",  # raw text; decoded at evaluation time
            "input_token": getattr(usage, "prompt_tokens", 0) or 0,
            "output_token": getattr(usage, "completion_tokens", 0) or 0,
        }

    @override
    def decode_ast(self, result, language, has_tool_call_tag):
        return bfcl_decode.decode_ast(result, self.options.block)

    @override
    def decode_execute(self, result, has_tool_call_tag):
        allowed = getattr(_entry_context, "allowed", None)
        if allowed is None:  # evaluation: the guard re-checks each string against the entry's own classes
            allowed = bfcl_executor_guard.all_methods()
        return bfcl_decode.decode_execute(result, self.options.block, allowed)


def handler_class(options: HandlerOptions, served_model: str | None = None) -> type[ToolN1Handler]:
    """A :class:`ToolN1Handler` subclass bound to ``options`` and the served model name (BFCL instantiates handlers
    from the class)."""
    name = f"ToolN1Handler_{options.prompt}_{options.data_mode}_{options.block}_{options.system}"
    return type(name, (ToolN1Handler,), {"options": options, "served_model": served_model})
