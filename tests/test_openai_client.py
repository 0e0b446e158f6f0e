"""tool_n1.openai_client, the one HTTP client of distillation and evaluation, against the loopback stand-in."""

from __future__ import annotations

import socket

import pytest

from tool_n1.openai_client import (
    ClientConfig,
    FatalServerError,
    OpenAIClient,
    ServerUnreachable,
    parse_chat_completion,
    server_message,
)
from tool_n1.openai_stub import Action, OpenAIStub

BODY = {"model": "m", "messages": [{"role": "user", "content": "q"}]}


def client(base_url: str, **config) -> OpenAIClient:
    defaults = {"api_key": "sk-secret-123456789", "timeout": 5.0, "max_retries": 2, "backoff_base": 0.01}
    return OpenAIClient(ClientConfig(base_url, **(defaults | config)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_server_message_is_read_from_every_common_error_body():
    assert server_message(b'{"detail": "Invalid API key"}') == "Invalid API key"
    assert server_message(b'{"error": {"message": "model not found", "code": 404}}') == "model not found"
    assert server_message(b'{"message": "busy"}') == "busy"
    assert server_message(b'{"detail": [{"loc": ["body"], "msg": "field required"}]}').startswith('[{"loc"')
    assert server_message(b"<html>\n Bad  Gateway </html>") == "<html> Bad Gateway </html>"
    assert server_message(b"\xff\xfe") == "\ufffd\ufffd"


def test_a_401_keeps_the_servers_message_and_stops_every_later_request():
    with OpenAIStub(default=Action.status(401, body='{"detail": "Invalid API key"}')) as stub:
        http = client(stub.base_url)
        with pytest.raises(FatalServerError, match="HTTP 401: Invalid API key"):
            http.post("/chat/completions", BODY, parse_chat_completion)
        with pytest.raises(FatalServerError):
            http.post("/chat/completions", BODY, parse_chat_completion)
        assert len(stub.state.requests) == 1, "nothing is sent once the key is known to be bad"


def test_other_4xx_are_not_retried_and_attempts_are_counted_truthfully():
    plans = {"q": [Action.status(400, body='{"error": {"message": "max_tokens too large"}}')]}
    with OpenAIStub(plans) as stub:
        http = client(stub.base_url)
        reply = http.post("/chat/completions", BODY, parse_chat_completion)
        assert (reply.error, reply.attempts, len(stub.state.requests)) == ("http_400", 1, 1)
        assert http.describe_failure(reply) == "HTTP 400: max_tokens too large after 1 attempt(s)"
    with OpenAIStub({"q": [Action.status(503)]}) as stub:
        http = client(stub.base_url)
        reply = http.post("/chat/completions", BODY, parse_chat_completion)
        assert (reply.error, reply.attempts, len(stub.state.requests)) == ("http_503", 3, 3)
        assert http.describe_failure(reply).endswith("after 3 attempt(s)") and reply.retries == {"http_503": 2}


def test_retries_recover_and_the_key_never_leaves_in_a_message():
    with OpenAIStub({"q": [Action.echo_auth(500), Action.ok("fine")]}) as stub:
        http = client(stub.base_url)
        reply = http.post("/chat/completions", BODY, parse_chat_completion)
        assert reply.ok and reply.value["content"] == "fine" and reply.retries == {"http_500": 1}
        assert stub.state.requests[0].authorization == "Bearer sk-secret-123456789"
    with OpenAIStub({"q": [Action.echo_auth(400)]}) as stub:
        reply = client(stub.base_url).post("/chat/completions", BODY, parse_chat_completion)
        assert "sk-secret" not in reply.detail and "Bearer ***" in reply.detail


def test_a_run_of_unanswered_requests_stops_the_client():
    http = client(f"http://127.0.0.1:{free_port()}/v1", max_retries=10, max_connection_failures=4)
    with pytest.raises(ServerUnreachable, match="4 request"):
        http.post("/chat/completions", BODY, parse_chat_completion)
    assert http.requests == 4
    with pytest.raises(ServerUnreachable):
        http.post("/chat/completions", BODY, parse_chat_completion)
    assert http.requests == 4


def test_an_answer_resets_the_run_of_failures():
    with OpenAIStub({"q": [Action.drop(), Action.drop(), Action.ok("a")]}) as stub:
        http = client(stub.base_url, max_retries=5, max_connection_failures=3)
        for _ in range(3):
            assert http.post("/chat/completions", BODY, parse_chat_completion).ok


def test_evaluation_stops_after_a_401_instead_of_sending_every_item(tmp_path):
    import openai_generate  # eval/ is on sys.path via tests/conftest.py

    items = [(f"i{n}", [{"role": "user", "content": f"q{n}"}]) for n in range(50)]
    with OpenAIStub(default=Action.status(401, body='{"detail": "Invalid API key"}')) as stub:
        config = openai_generate.GenerationConfig(stub.base_url, "m", concurrency=4, retries=2, backoff=0.01)
        with pytest.raises(SystemExit, match="HTTP 401: Invalid API key"):
            openai_generate.generate(items, config, tmp_path / "raw.jsonl", progress=False)
        assert len(stub.state.requests) <= 4
