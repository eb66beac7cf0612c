"""Database passwords on a real PostgreSQL server: never printed, read from a file or ~/.pgpass."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from queueemo.errors import DatabaseError
from queueemo.library import open_library

SECRET = "s3cret-Zq81"


@pytest.fixture
def role_db(postgres) -> str:
    """A database owned by the role ``listener`` (password ``SECRET``); the URL has no password."""
    url = postgres.new_database()
    postgres.create_role(f"listener_{sa.make_url(url).database}", SECRET, url)
    return url


def _with_user(url: str, user: str, password: str | None = None) -> str:
    credentials = user if password is None else f"{user}:{password}"
    return url.replace("queueemo@", f"{credentials}@")


def _role(postgres, url: str) -> str:
    import psycopg

    dbname = sa.make_url(url).database
    with psycopg.connect(host=str(postgres.socket_dir), user="queueemo", dbname="postgres") as connection:
        return connection.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                                  (dbname,)).fetchone()[0]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from queueemo.cli import main; main()", "-v", *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **env})


def test_wrong_password_is_one_line_without_the_password(postgres, role_db: str) -> None:
    user = _role(postgres, role_db)
    with pytest.raises(DatabaseError) as caught:
        open_library(_with_user(role_db, user, "wrong-" + SECRET))
    message = str(caught.value)
    assert "cannot log in" in message and "\n" not in message
    assert SECRET not in message and "wrong-" not in message
    result = _cli("status", "--db", _with_user(role_db, user, "wrong-" + SECRET), env={})
    assert result.returncode != 0
    assert "cannot log in" in result.stderr and SECRET not in result.stderr + result.stdout


def test_password_in_the_url_is_masked_in_output(postgres, role_db: str) -> None:
    user = _role(postgres, role_db)
    result = _cli("status", "--db", _with_user(role_db, user, SECRET), env={})
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "total" in result.stdout


def test_password_file_from_the_config(postgres, role_db: str, tmp_path: Path) -> None:
    user = _role(postgres, role_db)
    secret = tmp_path / "db-password"
    secret.write_text(SECRET + "\n")
    config = tmp_path / "config.toml"
    config.write_text(f'[library]\ndatabase_url = "{_with_user(role_db, user)}"\n'
                      f'password_file = "{secret}"\n')
    open_library(_with_user(role_db, user), password_file=str(secret)).close()
    result = _cli("--config", str(config), "status", env={})
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    secret.write_text("")
    with pytest.raises(DatabaseError, match=r"password file .* is empty"):
        open_library(_with_user(role_db, user), password_file=str(secret))


def test_pgpass_file_is_used(postgres, role_db: str, tmp_path: Path) -> None:
    user = _role(postgres, role_db)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"*:*:*:{user}:{SECRET}\n")
    pgpass.chmod(0o600)
    result = _cli("status", "--db", _with_user(role_db, user), env={"PGPASSFILE": str(pgpass)})
    assert result.returncode == 0, result.stderr
    result = _cli("status", "--db", _with_user(role_db, user), env={"PGPASSFILE": str(tmp_path / "none")})
    assert result.returncode != 0 and "cannot log in" in result.stderr


def test_a_missing_database_says_to_create_it(postgres) -> None:
    """At connect time psycopg gives no SQLSTATE: a missing database was 'check that the server runs'."""
    with pytest.raises(DatabaseError) as caught:
        open_library(postgres.url("no_such_index"))
    message = str(caught.value)
    assert "does not exist" in message and "createdb" in message
    assert "check that the server runs" not in message


def test_a_server_that_never_answers_is_given_up_on(postgres, monkeypatch: pytest.MonkeyPatch) -> None:
    """libpq waits forever by default: a host that accepted the connection and said nothing (or a
    firewall dropping packets) hung `status`, `scan` and the daemon's reconnecting for good."""
    monkeypatch.setattr("queueemo.library.db.CONNECT_TIMEOUT_S", 1)
    silent = socket.create_server(("127.0.0.1", 0))
    port, accepted, errors = silent.getsockname()[1], [], []

    def take() -> None:
        accepted.append(silent.accept()[0])  # and never answer

    def connect() -> None:
        try:
            open_library(f"postgresql+psycopg://queueemo@127.0.0.1:{port}/queueemo")
        except DatabaseError as error:
            errors.append(str(error))

    threading.Thread(target=take, daemon=True).start()
    opener = threading.Thread(target=connect, daemon=True)
    try:
        opener.start()
        opener.join(30)
        assert not opener.is_alive(), "still waiting for the server after 30 s"
    finally:
        for connection in accepted:
            connection.close()
        silent.close()
    assert len(errors) == 1 and "cannot connect" in errors[0] and "timeout" in errors[0]


def test_a_role_without_the_privileges_is_told_what_to_grant(postgres) -> None:
    """A read-only role's scan said only 'permission denied for table scan_workers', and a role that
    may not create the tables got the statement quoted back ('LINE 2: CREATE TABLE alembic_version')."""
    import psycopg

    from queueemo.library import Track

    url = postgres.new_database()
    open_library(url).close()  # the owner creates the index
    dbname = sa.make_url(url).database
    reader = f"reader_{dbname}"
    with psycopg.connect(host=str(postgres.socket_dir), user="queueemo", dbname=dbname,
                         autocommit=True) as connection:
        connection.execute(f"CREATE ROLE \"{reader}\" LOGIN PASSWORD '{SECRET}'")
        connection.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{reader}"')
    as_reader = _with_user(url, reader, SECRET)
    library = open_library(as_reader)
    try:
        with pytest.raises(DatabaseError) as caught, library.session() as session:
            session.add(Track(path="/m/a.flac", root="/m", rel_path="a.flac", size=1, mtime_ns=1))
    finally:
        library.close()
    message = str(caught.value)
    assert "permission denied for table tracks" in message and "\n" not in message
    assert f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {reader}" in message

    empty = postgres.new_database()  # PostgreSQL 15: only the owner may create in schema public
    with pytest.raises(DatabaseError) as caught:
        open_library(_with_user(empty, reader, SECRET))
    message = str(caught.value)
    assert "permission denied for schema public" in message and "LINE" not in message
    assert "may not create or change the index's tables" in message and SECRET not in message
    assert "as the role that owns the database" in message


@pytest.mark.parametrize("command", [["status"], ["status", "--failed"], ["scan", "--worker"]])
def test_without_psycopg_a_postgresql_url_says_to_install_it(postgres, tmp_path: Path,
                                                             command: list[str]) -> None:
    """`status` crashed with a traceback (the quick path imported psycopg unguarded), and the others
    said the URL was not of the form postgresql+psycopg://, which it was."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "psycopg.py").write_text("raise ImportError('No module named psycopg')\n")
    folder = tmp_path / "music"
    folder.mkdir()
    result = _cli(*command, "--db", postgres.url("anything"), *([str(folder)] if "scan" in command else []),
                  env={"PYTHONPATH": str(blocked)})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].endswith("pip install 'queueemo[postgres]'"), result.stderr
    assert "Traceback" not in result.stderr and "expected sqlite" not in result.stderr


def test_a_connection_cut_by_the_server_is_not_called_a_wrong_url(postgres) -> None:
    """A server stopping or restarting mid-command said 'cannot connect … check that the server runs
    and the URL', as if the URL had never worked."""
    import psycopg

    url = postgres.new_database()
    library = open_library(url)
    try:
        with pytest.raises(DatabaseError) as caught, library.session() as session:
            session.execute(sa.text("SELECT 1"))
            with psycopg.connect(host=str(postgres.socket_dir), user="queueemo", dbname="postgres",
                                 autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s AND pid <> pg_backend_pid()",
                              (sa.make_url(url).database,))
            session.execute(sa.text("SELECT 2"))
    finally:
        library.close()
    message = str(caught.value)
    assert message.startswith("lost the connection to") and "check that the server runs" not in message


def test_a_read_only_database_says_so(postgres) -> None:
    """A standby's URL (or default_transaction_read_only) gave only 'cannot execute CREATE TABLE in a
    read-only transaction'."""
    import psycopg

    url = postgres.new_database()
    with psycopg.connect(host=str(postgres.socket_dir), user="queueemo", dbname="postgres",
                         autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{sa.make_url(url).database}" SET default_transaction_read_only = on')
    with pytest.raises(DatabaseError) as caught:
        open_library(url)
    assert "takes no writes" in str(caught.value) and "primary" in str(caught.value)
