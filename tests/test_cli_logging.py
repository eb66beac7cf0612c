"""Log lines: ``<N>`` priority prefixes for journald, timestamps in a terminal, ``--log-level``."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

SCRIPT = """
import logging, sys
from queueemo.cli import _setup_logging
_setup_logging(0, sys.argv[1] if len(sys.argv) > 1 else None)
log = logging.getLogger("queueemo.test")
log.debug("hidden unless debug")
log.info("some news")
log.warning("careful")
log.error("broken")
"""


def run(*args: str, env: dict[str, str] | None = None, tty: bool = False) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"} | (env or {})
    if not tty:
        return subprocess.run([sys.executable, "-c", SCRIPT, *args], env=environment,
                              capture_output=True, text=True, check=True).stderr
    controller, terminal = pty.openpty()
    try:
        subprocess.run([sys.executable, "-c", SCRIPT, *args], env=environment, stderr=terminal,
                       stdout=subprocess.DEVNULL, check=True)
        return os.read(controller, 65536).decode()
    finally:
        os.close(controller)
        os.close(terminal)


def test_journald_lines_carry_priorities():
    out = run("info", env={"JOURNAL_STREAM": "8:12345"})
    assert out.splitlines() == ["<6>queueemo.test: some news", "<4>queueemo.test: careful",
                                "<3>queueemo.test: broken"]


def test_the_default_level_is_warning_and_debug_shows_all():
    assert run().splitlines() == ["<4>queueemo.test: careful", "<3>queueemo.test: broken"]
    assert "<7>queueemo.test: hidden unless debug" in run("debug").splitlines()


def test_a_terminal_gets_timestamps_without_prefixes():
    lines = run("warning", tty=True).splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WARNING queueemo\.test: careful", lines[0])
