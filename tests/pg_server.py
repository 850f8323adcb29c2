"""A throw-away PostgreSQL server for the store tests, from the Debian ``postgresql`` package's binaries.

Not a test module. :func:`start_server` runs ``initdb`` into a temporary directory and ``pg_ctl start`` on a free
port of 127.0.0.1 (unix socket in the same directory, trust authentication for local connections only); the
server runs as a non-root user because ``initdb`` refuses root (``postgres`` where it exists). :func:`why_not`
says why no server can be started here (binaries or Python packages missing), for a skip reason.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


def pg_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl (or the ones on PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name or 0))
    for path in reversed(candidates):
        if (Path(path) / "initdb").exists() and (Path(path) / "pg_ctl").exists():
            return Path(path)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def why_not() -> str | None:
    """None if a server can be started here, else the reason (for ``pytest.skip``)."""
    if pg_bindir() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or on PATH: "
            "apt-get install postgresql"
        )
    for module, package in (("psycopg2", "psycopg2-binary"), ("ase_db_backends", "ase-db-backends")):
        if importlib.util.find_spec(module) is None:
            return f"Python package {package} not installed: pip install -e '.[postgres]'"
    if os.geteuid() == 0 and not _server_user():
        return "running as root and no 'postgres' user to run the server as (initdb refuses root)"
    return None


def _server_user() -> str | None:
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """A running server: ``url(dbname)`` for a connection URL, ``create_database()`` for a fresh database."""

    directory: Path
    port: int
    user: str
    _run_as: str | None

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        import psycopg2

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        con = psycopg2.connect(self.url("postgres"))
        try:
            con.autocommit = True
            con.cursor().execute(f"CREATE DATABASE {name}")
        finally:
            con.close()
        return self.url(name)

    def stop(self) -> None:
        bindir = pg_bindir()
        _run(
            [str(bindir / "pg_ctl"), "stop", "-D", str(self.directory / "data"), "-m", "immediate", "-t", "30"],
            self._run_as,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


def _run(cmd: list[str], user: str | None, **kw) -> subprocess.CompletedProcess:
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def start_server() -> PostgresServer:
    """initdb + pg_ctl start on 127.0.0.1:<free port>; the caller calls ``stop()``."""
    bindir = pg_bindir()
    run_as = _server_user() if os.geteuid() == 0 else None
    # as root the server runs as another user, who must reach the directory: /tmp rather than a private TMPDIR
    directory = Path(tempfile.mkdtemp(prefix="mlpkit-pg-", dir="/tmp" if run_as and os.path.isdir("/tmp") else None))
    if run_as:
        os.chmod(directory, 0o700)
        shutil.chown(directory, run_as, run_as)
    data, user = directory / "data", "mlpkit"
    init = _run(
        [str(bindir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "-E", "UTF8", "--no-sync"],
        run_as,
    )
    if init.returncode:
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {init.stderr[-2000:]}")
    for _ in range(5):  # a free port may be taken between the probe and the start: try another one
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={directory} "
            "-c fsync=off -c max_connections=100"
        )
        start = _run(
            [
                str(bindir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(data),
                "-l",
                str(directory / "log"),
                "-o",
                options,
            ],
            run_as,
        )
        if start.returncode == 0:
            break
        time.sleep(0.5)
    else:
        log = (directory / "log").read_text() if (directory / "log").exists() else ""
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {start.stderr[-1000:]} {log[-2000:]}")
    return PostgresServer(directory=directory, port=port, user=user, _run_as=run_as)
