"""Processes in tests: a bounded load on every core, and what is still running for a NIGHTSHIFT_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_LOOP = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass\n"


@contextmanager
def busy_cores(seconds: float, cores: int | None = None) -> Iterator[list[subprocess.Popen[bytes]]]:
    """One busy loop per core (each ends by itself after `seconds`), killed when the block ends."""
    load = [
        subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(seconds)]) for _ in range(cores or os.cpu_count() or 2)
    ]
    try:
        yield load
    finally:
        for process in load:
            process.kill()
            process.wait()


def processes_of_home(home: Path) -> list[str]:
    """`pid command` of every live process whose environment names this NIGHTSHIFT_HOME (all a demo starts)."""
    from nightshift.runtime.supervisor import marked_processes

    found = []
    for pid in marked_processes("NIGHTSHIFT_HOME", str(home)):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found.append(f"{pid} {command.strip()}")
    return found


@contextmanager
def server_home(prefix: str = "nightshift-home-") -> Iterator[Path]:
    """A NIGHTSHIFT_HOME for tests that run the embedded PostgreSQL, outside pytest's private temp folder.

    As root, the server runs as its own system user, which must reach its data folder; pytest keeps
    /tmp/pytest-of-<user> at mode 0700 (and resets it at every session start), so homes live beside it.
    The server is stopped and the folder removed when the block ends.
    """
    import shutil
    import tempfile

    from nightshift.runtime import embedded_db

    home = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield home
    finally:
        embedded_db.stop(home)
        shutil.rmtree(home, ignore_errors=True)
