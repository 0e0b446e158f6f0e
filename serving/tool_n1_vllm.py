"""vLLM plugin: serve a Tool-N1 checkpoint with OpenAI ``tool_calls`` and the reasoning kept apart.

Tool-N1 models answer ``<think>…</think><tool_call>[…]</tool_call>``; plain ``vllm serve`` returns that as text. This
file registers, under the name ``tool_n1``,

* a tool parser (``--tool-parser-plugin serving/tool_n1_vllm.py --tool-call-parser tool_n1``): the calls of every
  ``<tool_call>`` block become ``message.tool_calls`` (``arguments`` a JSON string); and
* a reasoning parser (``--reasoning-parser-plugin serving/tool_n1_vllm.py --reasoning-parser tool_n1``): the
  ``<think>`` text becomes ``message.reasoning``. It reads text, not token ids, because Qwen2.5's tokenizer has no
  ``<think>`` token (vLLM's ``deepseek_r1`` / ``qwen3`` parsers need one).

Both build on ``tool_n1.openai_format`` (``tool_n1.parsing`` underneath), the reading of the reward and the
evaluators. With ``serving/tool_n1_chat_template.jinja`` the prompt is the RL training prompt. Command::

    vllm serve CHECKPOINT --chat-template serving/tool_n1_chat_template.jinja \\
        --enable-auto-tool-choice --tool-parser-plugin serving/tool_n1_vllm.py --tool-call-parser tool_n1 \\
        --reasoning-parser-plugin serving/tool_n1_vllm.py --reasoning-parser tool_n1

Needs vLLM (``.venv/rl-vllm`` on CPU, the GPU ``.venv/rl``) and the core package ``tool_n1`` installed there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vllm.entrypoints.chat_utils import make_tool_call_id
from vllm.entrypoints.generate.base.protocol import (
    DeltaFunctionCall,
    DeltaMessage,
    DeltaToolCall,
    ExtractedToolCallInformation,
    FunctionCall,
    ToolCall,
)
from vllm.reasoning.abs_reasoning_parsers import ReasoningParser, ReasoningParserManager
from vllm.tool_parsers.abstract_tool_parser import ToolParser, ToolParserManager

from tool_n1.openai_format import THINK_CLOSE, THINK_OPEN, openai_tool_calls, split_reply, stable_prefix
from tool_n1.parsing import QWEN_ASSISTANT_MARKER, cut_at_last_marker

NAME = "tool_n1"


def _tool_call(entry: dict[str, Any]) -> ToolCall:
    function = entry["function"]
    return ToolCall(type="function", function=FunctionCall(name=function["name"], arguments=function["arguments"]))


@ToolParserManager.register_module(NAME)
class ToolN1ToolParser(ToolParser):
    """``<tool_call>[{"name", "arguments"}, …]</tool_call>`` blocks → OpenAI ``tool_calls``."""

    # tool_choice "required" / a named function: vLLM's JSON-schema decoding does not write Tool-N1's tags
    supports_required_and_named = False

    def __init__(self, tokenizer: Any, tools: Any = None) -> None:
        super().__init__(tokenizer, tools)
        self._sent_calls = 0
        self._sent_content = 0

    def adjust_request(self, request: Any) -> Any:
        request = super().adjust_request(request)
        if request.tools and request.tool_choice != "none":
            request.skip_special_tokens = False  # keep <tool_call> where a tokenizer marks it special
        return request

    def extract_tool_calls(self, model_output: str, request: Any) -> ExtractedToolCallInformation:
        reply = split_reply(model_output)
        if not reply.calls:
            return ExtractedToolCallInformation(tools_called=False, tool_calls=[], content=model_output)
        entries = openai_tool_calls(reply.calls)
        self.prev_tool_call_arr = [
            {"name": e["function"]["name"], "arguments": e["function"]["arguments"]} for e in entries
        ]
        return ExtractedToolCallInformation(
            tools_called=True,
            tool_calls=[_tool_call(entry) for entry in entries],
            content=reply.content or None,
        )

    def extract_tool_calls_streaming(
        self,
        previous_text: str,
        current_text: str,
        delta_text: str,
        previous_token_ids: Sequence[int],
        current_token_ids: Sequence[int],
        delta_token_ids: Sequence[int],
        request: Any,
    ) -> DeltaMessage | None:
        """Emit what the stable prefix of ``current_text`` adds: content as it arrives, each call once its
        ``</tool_call>`` has arrived (whole: name and arguments in one delta)."""
        reply = split_reply(stable_prefix(current_text), strip=False)
        content = reply.content[self._sent_content :]
        self._sent_content = len(reply.content)
        new_calls = openai_tool_calls(reply.calls[self._sent_calls :])
        deltas = []
        for offset, entry in enumerate(new_calls):
            index = self._sent_calls + offset
            function = entry["function"]
            deltas.append(
                DeltaToolCall(
                    index=index,
                    id=make_tool_call_id(),
                    type="function",
                    function=DeltaFunctionCall(name=function["name"], arguments=function["arguments"]).model_dump(
                        exclude_none=True
                    ),
                )
            )
            self.prev_tool_call_arr.append({"name": function["name"], "arguments": function["arguments"]})
            self.streamed_args_for_tool.append(function["arguments"])
        self._sent_calls += len(new_calls)
        self.current_tool_id = self._sent_calls - 1
        if not deltas and not content:
            return None
        return DeltaMessage(content=content or None, tool_calls=deltas)


@ReasoningParserManager.register_module(NAME)
class ToolN1ReasoningParser(ReasoningParser):
    """``<think>…</think>`` (text, not a token) → ``message.reasoning``; the rest is the content."""

    @property
    def reasoning_start_str(self) -> str:
        return THINK_OPEN

    @property
    def reasoning_end_str(self) -> str:
        return THINK_CLOSE

    def _decode(self, ids: Sequence[int]) -> str:
        return self.model_tokenizer.decode(list(ids))

    def is_reasoning_end(self, input_ids: Sequence[int]) -> bool:
        """Whether the reply in ``input_ids`` has closed its ``<think>``. A prompt is read from its last assistant
        marker on, so the tags the system prompt quotes do not count (a prompt ends before any reasoning)."""
        text = cut_at_last_marker(self._decode(input_ids), QWEN_ASSISTANT_MARKER)
        reply = text.removeprefix(QWEN_ASSISTANT_MARKER).lstrip()
        if not reply or THINK_OPEN.startswith(reply):
            return False  # nothing written yet, or a <think> still arriving
        if not reply.startswith(THINK_OPEN):
            return True  # a reply without reasoning (a No-Reason model): all content
        return reply.rfind(THINK_CLOSE) > reply.rfind(THINK_OPEN)

    def extract_content_ids(self, input_ids: list[int]) -> list[int]:
        """The ids after the first ``</think>`` (found by bisection on decoded prefixes)."""
        if THINK_CLOSE not in self._decode(input_ids):
            return []
        low, high = 1, len(input_ids)
        while low < high:
            middle = (low + high) // 2
            if THINK_CLOSE in self._decode(input_ids[:middle]):
                high = middle
            else:
                low = middle + 1
        return list(input_ids[low:])

    def extract_reasoning(self, model_output: str, request: Any) -> tuple[str | None, str | None]:
        if THINK_OPEN not in model_output:
            return None, model_output
        start = model_output.find(THINK_OPEN) + len(THINK_OPEN)
        end = model_output.find(THINK_CLOSE, start)
        if end == -1:  # cut off while thinking
            return model_output[start:].strip() or None, None
        content = model_output[: start - len(THINK_OPEN)] + model_output[end + len(THINK_CLOSE) :]
        return model_output[start:end].strip(), content.strip() or None

    def extract_reasoning_streaming(
        self,
        previous_text: str,
        current_text: str,
        delta_text: str,
        previous_token_ids: Sequence[int],
        current_token_ids: Sequence[int],
        delta_token_ids: Sequence[int],
    ) -> DeltaMessage | None:
        before, now = self._parts(previous_text), self._parts(current_text)
        reasoning = now[0][len(before[0]) :]
        content = now[1][len(before[1]) :]
        if not reasoning and not content:
            return None
        return DeltaMessage(reasoning=reasoning or None, content=content or None)

    @staticmethod
    def _parts(text: str) -> tuple[str, str]:
        """(reasoning so far, content so far) of the first ``<think>`` block. Only a partial think tag at the end is
        held back: everything after ``</think>`` is content at once, since vLLM hands the tool parser only the
        content of the delta in which the reasoning ends."""
        start = text.find(THINK_OPEN)
        if start == -1:
            return "", _without_partial_tag(text, THINK_OPEN)
        end = text.find(THINK_CLOSE, start)
        if end == -1:
            return _without_partial_tag(text[start + len(THINK_OPEN) :], THINK_CLOSE), text[:start]
        return text[start + len(THINK_OPEN) : end], text[:start] + text[end + len(THINK_CLOSE) :]


def _without_partial_tag(text: str, tag: str) -> str:
    """``text`` without a trailing strict prefix of ``tag`` (a tag still arriving)."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return text[:-size]
    return text
