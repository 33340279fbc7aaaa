"""Throwaway PostgreSQL, MariaDB and Redis servers on 127.0.0.1, for the tests and for .ci/run.

    python -m tests.services postgres -- python -m pytest     # the suite with TEST_DATABASE_URL set
    python -m tests.services mariadb -- python -m pytest      # the same on MariaDB (Debian's mariadb-server)

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user; MariaDB's
as the `mysql` user. Everything lives in a temporary folder and is stopped and removed afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


def postgres_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return os.path.dirname(found[-1])
    pg_ctl = shutil.which("pg_ctl")
    return os.path.dirname(pg_ctl) if pg_ctl else None


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _as_postgres(command: list[str]) -> list[str]:
    if _is_root():
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A fresh PostgreSQL cluster; yields a SQLAlchemy URL of an empty database."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (no pg_ctl)")
    folder = tempfile.mkdtemp(prefix="eventory-pg-")
    data = os.path.join(folder, "data")
    port = free_port()
    if _is_root():
        shutil.chown(folder, "postgres", "postgres")
    run = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        subprocess.run(
            _as_postgres(
                [f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"]
            ),
            **run,
        )
        options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} -c fsync=off"
        subprocess.run(
            _as_postgres([f"{bindir}/pg_ctl", "-D", data, "-o", options, "-l", f"{folder}/log", "-w", "start"]), **run
        )
        try:
            subprocess.run(
                _as_postgres([f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "eventory"]),
                **run,
            )
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/eventory"
        finally:
            subprocess.run(
                _as_postgres([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# mariadbd is in /usr/sbin, which a non-root user's PATH often leaves out.
_SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


@contextlib.contextmanager
def mariadb() -> Iterator[str]:
    """A fresh MariaDB server; yields a SQLAlchemy URL (PyMySQL, utf8mb4) of an empty database
    created with the server's default utf8mb4 collation, which ignores case and accents."""
    server, install = shutil.which("mariadbd", path=_SBIN_PATH), shutil.which("mariadb-install-db", path=_SBIN_PATH)
    client = shutil.which("mariadb", path=_SBIN_PATH)
    if server is None or install is None or client is None:
        raise RuntimeError("MariaDB is not installed (Debian package mariadb-server)")
    folder = tempfile.mkdtemp(prefix="eventory-mariadb-")
    data, socket_path = os.path.join(folder, "data"), os.path.join(folder, "mariadb.sock")
    port = free_port()
    # As root the server runs as `mysql` (mariadbd refuses root without --user); otherwise as us.
    user = ["--user=mysql"] if _is_root() else []
    if _is_root():
        shutil.chown(folder, "mysql", "mysql")
    run = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # root@localhost without a password, reachable only through this folder's socket.
        subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={data}",
                *user,
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            **run,
        )
        process = subprocess.Popen(
            [
                server,
                "--no-defaults",
                f"--datadir={data}",
                f"--socket={socket_path}",
                f"--port={port}",
                "--bind-address=127.0.0.1",
                "--skip-networking=0",
                "--skip-name-resolve",
                *user,
                f"--log-error={folder}/error.log",
                f"--pid-file={folder}/mariadb.pid",
                "--character-set-server=utf8mb4",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            try:
                _wait_for_port(port)
            except RuntimeError:
                raise RuntimeError(Path(folder, "error.log").read_text(errors="replace")[-2000:]) from None
            sql = (
                "CREATE DATABASE eventory CHARACTER SET utf8mb4;"
                " CREATE USER 'eventory'@'127.0.0.1';"
                " GRANT ALL ON eventory.* TO 'eventory'@'127.0.0.1';"
            )
            subprocess.run([client, "--no-defaults", f"--socket={socket_path}", "-u", "root", "-e", sql], **run)
            yield f"mysql+pymysql://eventory@127.0.0.1:{port}/eventory?charset=utf8mb4"
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def redis() -> Iterator[str]:
    """A Redis server with no persistence; yields its redis:// URL."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


DATABASES = {"postgres": postgres, "mariadb": mariadb}


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in DATABASES or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    with DATABASES[argv[0]]() as url:
        return subprocess.call(argv[2:], env={**os.environ, "TEST_DATABASE_URL": url})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
