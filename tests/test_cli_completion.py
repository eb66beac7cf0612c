"""Shell completion (click's ``_QUEUEEMO_COMPLETE``): commands and choices, quick enough for every TAB."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import sys
from queueemo.cli import main
sys.argv[0] = "queueemo"  # the console script's name, which names the variable
try:
    main()
finally:
    print("torch imported" if "torch" in sys.modules else "no torch", file=sys.stderr)
"""


def complete(words: str) -> tuple[list[str], str]:
    """Candidates bash would be offered for ``words`` (the last one being completed), and stderr."""
    env = os.environ | {"_QUEUEEMO_COMPLETE": "bash_complete", "COMP_WORDS": words,
                        "COMP_CWORD": str(len(words.split(" ")) - 1)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          timeout=60)
    return [line.split(",", 1)[1] for line in done.stdout.splitlines()], done.stderr


def test_commands_and_model_choices_complete_without_importing_torch() -> None:
    commands, stderr = complete("queueemo s")
    assert commands == ["scan", "show", "status"]
    assert "no torch" in stderr
    models, _ = complete("queueemo scan --model ")
    assert sorted(models) == ["seed", "v2", "v2-lite"]
