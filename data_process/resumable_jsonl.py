"""An append-only JSONL journal that survives SIGKILL: one JSON object per line, one line per key.

* `ResumableJsonl.open` takes an exclusive ``flock`` on the file (a second writer fails at once instead of
  duplicating lines), truncates a torn trailing line (bytes after the last newline, left by a kill in mid-write),
  and returns the records already present, by key.
* `ResumableJsonl.append` writes whole lines with ``os.write`` on an ``O_APPEND`` descriptor, then ``os.fsync``:
  a record counts as done only once it is on disk, and a kill can at worst leave a partial last line, which the
  next `open` removes (that sample is then redone).
* `ResumableJsonl.drop` rewrites the file without some keys (write a temporary file, fsync, rename), so that they
  can be redone without ever holding two lines for one key.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


class JournalError(RuntimeError):
    """The output file is locked by another process or holds a line that is not one of our records."""


def dump_line(record: dict[str, Any]) -> str:
    """One JSON line, UTF-8 text as is; a string holding a lone surrogate (valid in JSON as ``"\\ud800"``, but no
    UTF-8 file can hold it) makes the whole line ASCII-escaped instead, so it is stored and reads back the same."""
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record, ensure_ascii=True, separators=(",", ":"))
    return line + "\n"


class ResumableJsonl:
    """``redact(line) -> line`` is applied to every serialised line before it is written (e.g. removing a key)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        key_field: str = "key",
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.key_field = key_field
        self.redact = redact
        self.truncated_bytes = 0
        self.duplicate_keys = 0
        self._fd: int | None = None

    def open(self) -> dict[str, dict[str, Any]]:
        """Lock, repair a torn tail, and return ``{key: record}`` of the complete lines (first line wins)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalError(f"{self.path} is locked by another running process") from None
        self._fd = fd
        data = self._read_all()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            self.truncated_bytes = len(data) - end
            os.ftruncate(fd, end)
            os.fsync(fd)
            data = data[:end]
        return self._parse(data)

    def _read_all(self) -> bytes:
        assert self._fd is not None
        chunks, offset = [], 0
        while chunk := os.pread(self._fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def _parse(self, data: bytes) -> dict[str, dict[str, Any]]:
        records: dict[str, dict[str, Any]] = {}
        for number, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict) or not isinstance(record.get(self.key_field), str):
                raise JournalError(f"{self.path}:{number} is not a record of ours; refusing to append to this file")
            if record[self.key_field] in records:
                self.duplicate_keys += 1
                continue
            records[record[self.key_field]] = record
        return records

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Append complete lines and fsync; returns the number of records written."""
        assert self._fd is not None, "open() first"
        lines = [dump_line(r) for r in records]
        if self.redact is not None:
            lines = [self.redact(line) for line in lines]
        if not lines:
            return 0
        view = memoryview("".join(lines).encode("utf-8"))
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        return len(lines)

    def drop(self, should_drop: Callable[[dict[str, Any]], bool]) -> int:
        """Rewrite the file without the records ``should_drop`` selects; returns how many were removed."""
        assert self._fd is not None, "open() first"
        kept, removed = [], 0
        for line in self._read_all().splitlines(keepends=True):
            if line.strip() and should_drop(json.loads(line)):
                removed += 1
            else:
                kept.append(line)
        if not removed:
            return 0
        tmp = self.path.with_name(self.path.name + ".rewrite.tmp")
        with open(tmp, "wb") as handle:
            handle.write(b"".join(kept))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        old_fd = self._fd
        self._fd = None
        os.close(old_fd)  # the lock went with the old inode: take it on the new file
        truncated, self.truncated_bytes = self.truncated_bytes, 0
        self.open()
        self.truncated_bytes += truncated
        return removed

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
