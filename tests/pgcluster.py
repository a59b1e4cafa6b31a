"""A throwaway PostgreSQL server on loopback, for the tests of shared storages and for CI.

Uses the server programs of the Debian package (``initdb``, ``pg_ctl`` on PATH or under
/usr/lib/postgresql/*/bin). PostgreSQL refuses to run as root, so as root the cluster belongs to the
``postgres`` user (``runuser``). Only the standard library: ``.ci/run`` uses it before any virtual
environment exists::

    python3 tests/pgcluster.py start DIR   # prints postgresql://digitbench@127.0.0.1:PORT/postgres
    python3 tests/pgcluster.py stop DIR
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

USER = "digitbench"


class Unavailable(Exception):
    """No server could be started here; the message says why."""


def _program(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                      key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not versions:
        raise Unavailable(f"{name} not found (install the Debian package postgresql)")
    return versions[-1]


def _as_owner(command: list[str]) -> list[str]:
    """``command`` run as the postgres user when we are root (the server refuses root)."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser") is None:
        raise Unavailable("running as root and runuser is missing: cannot start postgres as a user")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable("running as root and there is no postgres user to run the server") from None
    return ["runuser", "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(folder: Path) -> str:
    """Create and start a cluster in ``folder`` (listening on 127.0.0.1 only); returns its URL."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    initdb, pg_ctl = _program("initdb"), _program("pg_ctl")
    if os.geteuid() == 0:
        _as_owner(["true"])
        shutil.chown(folder, "postgres")
        folder.chmod(0o700)
    data, port = folder / "data", _free_port()
    steps = [
        [initdb, "-D", str(data), "-A", "trust", "-U", USER, "-E", "UTF8", "--no-sync"],
        [pg_ctl, "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60", "-o",
         f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={folder} "
         "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
         "start"],
    ]
    for step in steps:
        done = subprocess.run(_as_owner(step), capture_output=True, text=True, cwd="/")
        if done.returncode != 0:
            log = folder / "server.log"
            detail = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            if log.exists():
                detail += log.read_text(errors="replace").strip().splitlines()[-3:]
            raise Unavailable(f"{Path(step[0]).name} failed: {' | '.join(detail[-4:])}")
    url = f"postgresql://{USER}@127.0.0.1:{port}/postgres"
    (folder / "url").write_text(url + "\n")
    return url


def stop(folder: Path) -> None:
    """Stop the cluster of ``folder`` (fast shutdown); nothing if it is not running."""
    data = Path(folder).resolve() / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(_as_owner([_program("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True, cwd="/")


def create_database(server_url: str, name: str) -> str:
    """Create the empty database ``name`` on the server; returns its URL (needs psycopg)."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: pgcluster.py start|stop DIR", file=sys.stderr)
        return 2
    if argv[0] == "stop":
        stop(Path(argv[1]))
        return 0
    try:
        print(start(Path(argv[1])))
    except Unavailable as exc:
        print(f"pgcluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
