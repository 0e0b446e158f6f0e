"""Command-line conventions shared by every entry point: no abbreviated options, no key ever echoed.

``ArgumentParser`` is :class:`argparse.ArgumentParser` with ``allow_abbrev=False`` (so ``--api-key sk-…`` is an
unknown option, never an abbreviation of ``--api-key-env``) and error messages that redact every value that looks
like an API key (argparse's own "unrecognized arguments: …" would print it).

>>> looks_like_key("sk-proj-4f9aK2mQ7xZ1bN8c"), looks_like_key("DEEPSEEK_API_KEY"), looks_like_key("train")
(True, False, False)
>>> redact_keys("unrecognized arguments: --api-key sk-4f9aK2mQ7xZ1bN8cD3")
'unrecognized arguments: --api-key ***'
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any, NoReturn

#: Provider prefixes (OpenAI ``sk-``, Hugging Face ``hf_``, GitHub ``ghp_``/``github_pat_``, Slack ``xox?-``, Google
#: ``AIza``) followed by a token, or a bare token of 32+ characters mixing letters and digits.
_KEY_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_-])(?:(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}|hf_[A-Za-z0-9]{8,}|gh[pousr]_[A-Za-z0-9]{8,}|"
    r"github_pat_[A-Za-z0-9_]{8,}|xox[abpsr]-[A-Za-z0-9-]{8,}|AIza[A-Za-z0-9_-]{8,}|"
    r"(?=[A-Za-z0-9_\-.]*[0-9])(?=[A-Za-z0-9_\-.]*[a-z])[A-Za-z0-9_\-.]{32,})(?![A-Za-z0-9_-])"
)
_BEARER = re.compile(r"(bearer\s+)[^\s'\",}]+", re.IGNORECASE)


def looks_like_key(value: str) -> bool:
    """Whether ``value`` looks like a secret token rather than a name, a path or a number."""
    return bool(_KEY_TOKEN.fullmatch(value.strip()))


def redact_keys(text: str) -> str:
    """``text`` with every key-like token and every ``Bearer <token>`` replaced by ``***``."""
    return _BEARER.sub(r"\1***", _KEY_TOKEN.sub("***", text))


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every given secret (also JSON-escaped) and any ``Bearer <token>`` replaced by ``***``.

    Exact, unlike :func:`redact_keys`: for data (journal lines, server messages) where a hash must survive.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
            escaped = json.dumps(secret)[1:-1]
            if escaped != secret:
                text = text.replace(escaped, "***")
    return _BEARER.sub(r"\1***", text)


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with ``allow_abbrev=False`` and error messages that never echo a key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        super().error(redact_keys(message))
