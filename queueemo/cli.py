"""Command-line interface: thin shims that parse, call a function and print.

This is the only module that talks to the terminal and maps errors to exit codes: every
``QueueemoError`` becomes one line on stderr and exit status 1. Heavy modules are imported inside the
commands so that ``queueemo --help`` stays instant.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import click

from queueemo import __version__
from queueemo.errors import QueueemoError


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="queueemo")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="Config file (default: $XDG_CONFIG_HOME/queueemo/config.toml).",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, config_path: str | None) -> None:
    """Emotion-aware queue daemon for MPD."""
    _setup_logging(verbose)
    ctx.obj = {"config_path": config_path}


def _quadrant(arousal: float, valence: float) -> str:
    names = {
        (True, True): "Q1 happy/exuberant",
        (True, False): "Q2 angry/anxious",
        (False, False): "Q3 sad/depressed",
        (False, True): "Q4 calm/content",
    }
    return names[(arousal >= 0, valence >= 0)]


def _expand_paths(paths: tuple[str, ...]) -> list[Path]:
    from queueemo.audio import is_audio_path

    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_audio_path(p))
            files.extend(found)
        else:
            files.append(path)
    return files


def _summary_line(path: Path, trajectory) -> str:
    import numpy as np

    duration = len(trajectory) * 0.5
    edge = min(len(trajectory), 20)
    opening = np.asarray(trajectory[:edge]).mean(axis=0)
    closing = np.asarray(trajectory[-edge:]).mean(axis=0)
    overall = np.asarray(trajectory).mean(axis=0)
    minutes, seconds = divmod(int(math.floor(duration)), 60)
    return (
        f"{path}\n"
        f"  duration {minutes}:{seconds:02d}   quadrant {_quadrant(*overall)}\n"
        f"  opening  arousal {opening[0]:+.2f} valence {opening[1]:+.2f}\n"
        f"  closing  arousal {closing[0]:+.2f} valence {closing[1]:+.2f}"
    )


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file per line.")
def analyze(paths: tuple[str, ...], as_json: bool) -> None:
    """Print the emotion trajectory of audio files (folders are searched recursively)."""
    from queueemo.emotion.inference import analyze_file

    files = _expand_paths(paths)
    if not files:
        raise QueueemoError("no audio files found in " + ", ".join(paths))
    failures = 0
    for path in files:
        try:
            trajectory = analyze_file(path)
        except QueueemoError as exc:
            failures += 1
            if as_json:
                click.echo(json.dumps({"path": str(path), "error": str(exc)}))
            else:
                click.echo(f"error: {exc}", err=True)
            continue
        if as_json:
            record = {
                "path": str(path),
                "duration_s": len(trajectory) * 0.5,
                "window_s": 0.5,
                "arousal": [round(float(a), 4) for a in trajectory[:, 0]],
                "valence": [round(float(v), 4) for v in trajectory[:, 1]],
            }
            click.echo(json.dumps(record))
        else:
            click.echo(_summary_line(path, trajectory))
    if failures:
        raise QueueemoError(f"{failures} of {len(files)} files could not be analysed")


def main() -> None:
    """Console-script entry point: known errors become one line and exit status 1."""
    try:
        status = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except QueueemoError as exc:
        click.echo(f"queueemo: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)
