"""A real PostgreSQL server for the tests: Debian's ``postgresql`` binaries, a private cluster in a
temporary folder, listening only on a unix socket there. initdb and postgres refuse to run as root, so
as root they run as the ``postgres`` system user (``runuser``)."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "queueemo"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started here (the reason is the message)."""


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresUnavailable("PostgreSQL is not installed (apt-get install postgresql)")


@dataclass
class PostgresServer:
    """A running private cluster; ``new_database()`` gives each test an empty database."""

    root: Path
    bin_dir: Path
    as_user: list[str]
    _numbers: itertools.count = field(default_factory=itertools.count)

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self.as_user, *command], capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise PostgresUnavailable(f"{Path(command[0]).name} failed: {result.stderr.strip()[-500:]}")

    @classmethod
    def start(cls) -> PostgresServer:
        bin_dir = _bin_dir()
        root = Path(tempfile.mkdtemp(prefix="queueemo-pg-"))
        as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no 'postgres' user") from None
            os.chown(root, owner.pw_uid, owner.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        root.chmod(0o755)
        server = cls(root, bin_dir, as_user)
        server._run(str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", SUPERUSER, "-A", "trust",
                    "-E", "UTF8", "--locale", "C", "--no-sync")
        server._run("mkdir", "-p", str(server.socket_dir))
        # The superuser gets in without a password; every other role needs its password (SCRAM).
        hba = root / "data" / "pg_hba.conf"
        hba.write_text(f"local all {SUPERUSER} trust\nlocal all all scram-sha-256\n")
        os.chown(hba, (root / "data").stat().st_uid, (root / "data").stat().st_gid)
        server._start()
        return server

    def _start(self) -> None:
        options = (f"-k {self.socket_dir} -c listen_addresses='' -F -c full_page_writes=off "
                   "-c max_connections=200")
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-l",
                  str(self.root / "server.log"), "-o", options, "-w", "-t", "60", "start")

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._numbers)}"
        with psycopg.connect(host=str(self.socket_dir), user=SUPERUSER, dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')  # quicker than WAL_LOG
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (connections still open to it are ended)."""
        import psycopg
        import sqlalchemy as sa

        with psycopg.connect(host=str(self.socket_dir), user=SUPERUSER, dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)')

    def create_role(self, name: str, password: str, database: str) -> None:
        """A login role with ``password`` that owns ``database`` (a URL from ``new_database``)."""
        import psycopg
        import sqlalchemy as sa

        dbname = sa.make_url(database).database
        with psycopg.connect(host=str(self.socket_dir), user=SUPERUSER, dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'")
            connection.execute(f'ALTER DATABASE "{dbname}" OWNER TO "{name}"')

    def restart(self, down_s: float = 0.0) -> None:
        """Stop (fast: connections are cut), stay down ``down_s``, start again on the same data."""
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        time.sleep(down_s)
        self._start()

    def stop(self) -> None:
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate",
                      "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
