"""Start-up and failure modes: permanent errors exit 78 at once, MPD away is waited for."""

from __future__ import annotations

import configparser
import signal
import subprocess
import time
from pathlib import Path

import pytest

from queueemo.library import get_track_by_path
from queueemo.library.db import open_library

from .conftest import (
    REPO,
    DaemonProcess,
    MpdServer,
    add_song,
    index_track,
    run_cli,
    wait_for,
    write_config,
)

EX_CONFIG = 78


def daemon_cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("--config", str(config), "daemon", *args, timeout=60)


def assert_exits_78_with_one_line(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == EX_CONFIG, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], result.stderr
    assert lines[0].startswith("<3>"), "an error-priority line for journald"


def test_a_file_that_is_not_a_database_exits_78_at_once(tmp_path, mpd_server, queue_env):
    bogus = tmp_path / "notes.sqlite3"
    bogus.write_text("shopping list\n" * 100)
    started = time.monotonic()
    result = daemon_cli("--db", f"sqlite:///{bogus}", config=write_config(tmp_path))
    assert time.monotonic() - started < 30
    assert_exits_78_with_one_line(result, "not a usable queueemo database")
    assert bogus.read_text() == "shopping list\n" * 100, "nothing is overwritten"


def test_a_damaged_index_exits_78(tmp_path, mpd_server, queue_env):
    url = f"sqlite:///{tmp_path / 'damaged.sqlite3'}"
    with open_library(url) as library:
        for i in range(300):
            path = add_song(mpd_server.music, f"s{i}.ogg", f"A{i}", seconds=0.2)
            index_track(library, path, mpd_server.music, artist=f"A{i}", opening=(0, 0), tail=(0, 0))
    database = tmp_path / "damaged.sqlite3"
    data = bytearray(database.read_bytes())
    page = 4096
    for start in range(3 * page, len(data) - page, 2 * page):  # keep the header and the schema page
        data[start + 100 : start + 300] = b"\xff" * 200
    database.write_bytes(bytes(data))
    result = daemon_cli("--db", url, config=write_config(tmp_path))
    assert result.returncode == EX_CONFIG, result.stderr
    assert "pass another --db" in result.stderr


def test_a_bad_config_exits_78(tmp_path, queue_env):
    config = tmp_path / "bad.toml"
    config.write_text("[daemon]\nwatermak = 3\n")
    assert_exits_78_with_one_line(daemon_cli(config=config), "did you mean 'watermark'")


def test_a_refused_password_exits_78_without_ready_or_retries(tmp_path, mpd_server, queue_env,
                                                               monkeypatch):
    monkeypatch.setenv("MPD_HOST", f"wrong@{mpd_server.socket}")
    process = DaemonProcess(tmp_path, write_config(tmp_path))
    try:
        assert process.process.wait(60) == EX_CONFIG, process.output()
        assert b"READY=1" not in process.messages()
        output = process.output()
        assert output.count("refused the password") == 1, output
        assert "retrying" not in output and "ready" not in output
    finally:
        process.close()


def test_an_unparsable_db_url_shows_the_expected_form(tmp_path, queue_env):
    result = run_cli("next", "--db", "sqlite:/just/a/path.sqlite3")  # slashes lost; a plain path is a file
    assert result.returncode == 2
    assert "sqlite:////abs/path.sqlite3" in result.stderr and "postgresql+psycopg://" in result.stderr


def test_mpd_down_at_start_is_waited_for_then_new_files_are_indexed(tmp_path: Path,
                                                                    mpd_server: MpdServer, queue_env):
    add_song(mpd_server.music, "old.ogg", "Old")
    mpd_server.update()
    mpd_server.stop()
    process = DaemonProcess(tmp_path, write_config(tmp_path, watermark=1))
    try:
        wait_for(lambda: process.output().count("retrying in") >= 2, timeout=60,
                 what="two failed attempts to reach MPD")
        wait_for(lambda: "retrying every 1 s" in process.output(), timeout=30,
                 what="the delays to reach their cap (1 s here)")
        time.sleep(2.5)  # two or three more attempts at the cap: not logged again
        assert process.output().count("retrying every") == 1, process.output()
        told = process.messages()
        assert b"READY=1" not in told and any(m.startswith(b"STATUS=waiting for MPD") for m in told)
        assert "no music folder" not in process.output()
        mpd_server.start()
        process.ready(timeout=30)
        assert f"watching {mpd_server.music}" in process.output()
        new = add_song(mpd_server.music / "later", "new.ogg", "Later")
        with open_library(queue_env["QUEUEEMO_DB"]) as library:
            def indexed() -> bool:
                with library.session() as session:
                    return get_track_by_path(session, new) is not None

            wait_for(indexed, timeout=60, what="the file added after MPD came up to be indexed")
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(30) == 0, process.output()
    finally:
        process.close()


def test_the_unit_does_not_restart_on_permanent_errors_nor_start_a_second_mpd():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(REPO / "systemd" / "queueemo.service")
    assert unit["Service"]["RestartPreventExitStatus"].split() == [str(EX_CONFIG)]
    assert "Wants" not in unit["Unit"] and "Requires" not in unit["Unit"]
    assert "mpd.service" in unit["Unit"]["After"]


def test_no_database_server_at_start_exits_75_so_systemd_tries_again(tmp_path, queue_env):
    """A PostgreSQL server not up yet (a NAS still booting) is not a bad config: the unit's
    RestartPreventExitStatus=78 must not keep the daemon down for good."""
    pytest.importorskip("psycopg")
    nobody_listens = tmp_path / "no-server"
    nobody_listens.mkdir()
    url = f"postgresql+psycopg://queueemo@/queueemo?host={nobody_listens}"
    result = daemon_cli("--db", url, config=write_config(tmp_path))
    assert result.returncode == 75, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot connect to" in lines[0], result.stderr


def test_a_database_the_server_refuses_exits_78(tmp_path, queue_env, postgres):
    result = daemon_cli("--db", postgres.url("no_such_database"), config=write_config(tmp_path))
    assert result.returncode == EX_CONFIG, result.stderr


def test_a_login_with_no_password_exits_78(tmp_path, queue_env, postgres, monkeypatch):
    """libpq refuses before the server says FATAL ('fe_sendauth: no password supplied'): still a
    configuration problem, not a server that is not up yet."""
    url = postgres.new_database()
    postgres.create_role("nopass_user", "secret", url)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    without_password = url.replace("://queueemo@", "://nopass_user@")
    assert without_password != url
    result = daemon_cli("--db", without_password, config=write_config(tmp_path))
    assert result.returncode == EX_CONFIG, result.stderr
    assert "cannot log in" in result.stderr
