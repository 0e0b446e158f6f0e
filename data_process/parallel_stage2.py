"""Stage 2 on several processes with the same output as one (not an entry point; ``to_verl_parquet.py --workers``).

This process builds a share of the batches (:func:`own_share`) and writes every row group; forked processes build
the rest and hand each table back as an Arrow IPC file that this process memory-maps, so nothing is pickled.
"""

from __future__ import annotations

import os
from collections import deque
from itertools import islice
from pathlib import Path
from typing import Any

from arrow_batches import BatchBuilder
from records import fork_context

WRITE_COST = 0.2  # parquet writing per built batch, relative to building it (measured: 0.9 s / 4.4 s)
SHM_ROOM = 1 << 30  # free bytes /dev/shm needs for the workers' Arrow files (a few batches at a time)
PART_PREFIX = "tool-n1-parquet-"  # + the writing process's id + a random suffix
_WORKER: dict[str, Any] = {}


def _adopt_builder(builder: BatchBuilder, part_dir: str) -> None:
    """Pool initializer: the forked worker keeps the parent's builder (inherited, not pickled)."""
    _WORKER.update(builder=builder, part_dir=part_dir)


def _build_in_worker(task: tuple[str, int, list[int]]) -> dict[str, Any]:
    """Build one batch; its table goes to an Arrow IPC file (one copy of the buffers, no pickling) whose path is
    returned in place of the table."""
    import pyarrow as pa

    result = _WORKER["builder"](task)
    table = result.pop("table")
    if table is not None:
        path = os.path.join(_WORKER["part_dir"], f"{task[0]}-{task[1]}.arrow")
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        result["table_file"] = path
    return result


def _adopt_table(result: dict[str, Any]):
    """The table of a worker's result, memory-mapped from its IPC file (the file is unlinked at once: the mapping
    keeps its pages until the table is released); ``None`` when the batch had no row."""
    import pyarrow as pa

    path = result.pop("table_file", None)
    if path is None:
        return None
    with pa.memory_map(path) as source:
        table = pa.ipc.open_file(source).read_all()
    os.unlink(path)
    return table


def own_share(workers: int) -> float:
    """The share of the batches this process builds itself when ``workers`` processes build (it also writes them
    all): balances ``share * B + W`` against ``(1 - share) * B / (workers - 1)`` with W = ``WRITE_COST`` * B."""
    return max(0.0, (1 - WRITE_COST * (workers - 1)) / workers)


def built_batches(tasks, builder: BatchBuilder, workers: int):
    """``(task, result)`` for every task, in task order; ``result`` is ``builder(task)``.

    With ``workers >= 2``, ``workers - 1`` forked processes build most batches while this one builds a share of
    them (:func:`own_share`) and writes them all; at most ``2 * workers`` batches are in flight, so memory stays
    bounded. A forked process hands its table back as an Arrow IPC file that this one memory-maps (in ``/dev/shm``
    where it has room, else the system's temporary folder). The output is the same as with one process."""
    context = fork_context() if workers >= 2 and len(tasks) >= 2 else None
    if context is None:
        for task in tasks:
            yield task, builder(task)
        return
    import shutil
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    share = own_share(workers)
    own = [int((k + 1) * share) > int(k * share) for k in range(len(tasks))]
    forked = iter([task for task, mine in zip(tasks, own, strict=True) if not mine])
    folder = _memory_folder()
    remove_stale_part_dirs(folder or tempfile.gettempdir())
    part_dir = tempfile.mkdtemp(prefix=f"{PART_PREFIX}{os.getpid()}-", dir=folder)
    try:
        with ProcessPoolExecutor(
            workers - 1, mp_context=context, initializer=_adopt_builder, initargs=(builder, part_dir)
        ) as pool:
            pending = deque(pool.submit(_build_in_worker, task) for task in islice(forked, 2 * workers))
            for task, mine in zip(tasks, own, strict=True):
                if mine:
                    yield task, builder(task)
                    continue
                future = pending.popleft()
                following = next(forked, None)
                if following is not None:
                    pending.append(pool.submit(_build_in_worker, following))
                result = future.result()
                result["table"] = _adopt_table(result)
                yield task, result
    finally:
        shutil.rmtree(part_dir, ignore_errors=True)


def remove_stale_part_dirs(folder: str) -> list[str]:
    """Remove the part folders of runs that were killed (their process is gone), which would otherwise keep their
    memory in ``/dev/shm``; returns what was removed."""
    import shutil

    removed = []
    for path in Path(folder).glob(f"{PART_PREFIX}*-*"):
        pid = path.name[len(PART_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _memory_folder(room: int = SHM_ROOM) -> str | None:
    """``/dev/shm`` when it is writable with ``room`` bytes free (containers often mount only 64 MB there)."""
    import shutil

    try:
        if os.access("/dev/shm", os.W_OK) and shutil.disk_usage("/dev/shm").free >= room:
            return "/dev/shm"
    except OSError:
        pass
    return None
