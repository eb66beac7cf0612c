"""The code base stays ruff-clean (the linter is part of the test extras) and its layers point one way."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")
    result = subprocess.run([ruff, "check", "--no-cache", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def _imports() -> dict[str, set[str]]:
    """Every module of the package and the modules it imports, at the top or inside functions
    (``migrations/``, linked into the package, is not walked: it is Alembic's)."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "queueemo").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = parts[:-1]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
                names.add(".".join(filter(None, (base, node.module))))
        found[module] = names
    return found


def test_dependencies_point_one_way():
    imports = _imports()
    assert imports["queueemo.library.scanner"] >= {"sqlalchemy", "queueemo.library.db"}

    def importers(prefix: str) -> set[str]:
        return {module for module, names in imports.items()
                if any(name == prefix or name.startswith(prefix + ".") for name in names)}

    assert importers("queueemo.cli") == set()
    assert importers("queueemo.daemon") <= {"queueemo.cli"}
    training = "queueemo.emotion.training"
    assert {m for m in importers(training) if not m.startswith(training)} <= {"queueemo.cli"}
    for driver in ("sqlite3", "sqlalchemy", "psycopg", "alembic"):
        outside = {m for m in importers(driver) if not m.startswith("queueemo.library.")}
        assert outside == set(), f"{driver} is imported outside library/: {sorted(outside)}"


def test_only_the_edges_read_the_environment():
    readers = set()
    for path in (ROOT / "queueemo").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") \
                    and isinstance(node.value, ast.Name) and node.value.id == "os":
                readers.add(path.relative_to(ROOT / "queueemo").as_posix())
    # assets.py: QUEUEEMO_MODEL_DIR, a documented override for evaluating freshly trained weights
    assert readers <= {"cli.py", "config.py", "daemon.py", "assets.py"}, sorted(readers)
