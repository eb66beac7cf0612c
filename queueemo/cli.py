"""Command-line interface: thin shims that parse, call a function and print.

This is the only module that talks to the terminal and maps errors to exit codes: every
``QueueemoError`` becomes one line on stderr and exit status 1. Heavy modules are imported inside the
commands so that ``queueemo --help`` stays instant.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import signal
import sys
from pathlib import Path
from typing import ClassVar

import click

from queueemo import __version__
from queueemo.errors import QueueemoError

LOG_LEVELS = ("debug", "info", "warning", "error")
EX_CONFIG = 78  # sysexits.h: a permanent problem (config, index, password); systemd must not retry
EX_TEMPFAIL = 75  # sysexits.h: the database server is not up yet; systemd restarts the daemon


class _JournalFormatter(logging.Formatter):
    """sd-daemon style ``<N>`` priority prefixes, so ``journalctl -p warning`` can filter."""

    PRIORITIES: ClassVar[dict[int, int]] = {
        logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7,
    }

    def format(self, record: logging.LogRecord) -> str:
        priority = self.PRIORITIES.get(record.levelno, 6)
        return "\n".join(f"<{priority}>{line}" for line in super().format(record).splitlines())


def _setup_logging(verbose: int, log_level: str | None) -> None:
    """stderr logging: ``<N>`` prefixes for journald (or any non-terminal), timestamps in a terminal."""
    if log_level:
        level = getattr(logging, log_level.upper())
    else:
        level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM") or not sys.stderr.isatty():
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                               datefmt="%Y-%m-%d %H:%M:%S"))
    logging.basicConfig(level=level, handlers=[handler])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="queueemo")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default=None,
              help="Log level (overrides -v; the daemon defaults to info).")
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="Config file (default: $XDG_CONFIG_HOME/queueemo/config.toml).",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, log_level: str | None, config_path: str | None) -> None:
    """Emotion-aware queue daemon for MPD."""
    _setup_logging(verbose, log_level)
    ctx.obj = {"config_path": config_path, "log_level": log_level}


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


def _model_option(command, help: str = "Clip model (default: [emotion] model, v2)."):
    from queueemo.config import EMOTION_MODELS

    return click.option("--model", "model", type=click.Choice(EMOTION_MODELS), default=None,
                        help=help)(command)


def _summary_line(path: Path, trajectory, boundaries) -> str:
    from queueemo.audio import WINDOW_SECONDS
    from queueemo.boundaries import boundary_emotion
    from queueemo.emotion.summary import QUADRANT_NAMES, quadrant_of

    summary = boundary_emotion(trajectory, boundaries)
    quadrant = quadrant_of(summary["mean_arousal"], summary["mean_valence"])
    minutes, seconds = divmod(math.floor(len(trajectory) * WINDOW_SECONDS), 60)
    return (
        f"{path}\n"
        f"  duration {minutes}:{seconds:02d}   quadrant {quadrant} {QUADRANT_NAMES[quadrant]}\n"
        f"  sound    from {boundaries.sound_start_s:.1f} s, ending from {boundaries.ending_start_s:.1f} s\n"
        f"  opening  arousal {summary['opening_arousal']:+.2f} valence {summary['opening_valence']:+.2f}"
        f"   {boundaries.opening_lufs:.1f} LUFS\n"
        f"  closing  arousal {summary['closing_arousal']:+.2f} valence {summary['closing_valence']:+.2f}"
        f"   {boundaries.ending_lufs:.1f} LUFS"
    )


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file per line.")
@_model_option
@click.pass_context
def analyze(ctx: click.Context, paths: tuple[str, ...], as_json: bool, model: str | None) -> None:
    """Print the emotion trajectory of audio files (folders are searched recursively)."""
    from queueemo.audio import WINDOW_SECONDS
    from queueemo.boundaries import BoundaryAccumulator
    from queueemo.config import load_settings
    from queueemo.emotion.backends import get_backend
    from queueemo.threads import set_analysis_threads

    settings = load_settings(ctx.obj["config_path"], overrides={"emotion": {"model": model}})
    library = settings.library
    backend = get_backend(settings.emotion.model)
    analyze_file = backend.analyze
    set_analysis_threads(torch=backend.uses_torch)

    files = _expand_paths(paths)
    if not files:
        raise QueueemoError("no audio files found in " + ", ".join(paths))
    failures = 0
    for path in files:
        edges = BoundaryAccumulator()  # measured on the same decode as the emotion
        try:
            trajectory = analyze_file(path, observe=edges.add)
        except QueueemoError as exc:
            failures += 1
            if as_json:
                click.echo(json.dumps({"path": str(path), "error": str(exc)}))
            elif len(files) == 1:
                raise  # the one file's error is the whole story: one line
            else:
                click.echo(f"error: {exc}", err=True)
            continue
        boundaries = edges.result().resized(library.opening_windows, library.closing_windows)
        if as_json:
            record = {
                "path": str(path),
                "duration_s": len(trajectory) * WINDOW_SECONDS,
                "window_s": WINDOW_SECONDS,
                "boundaries": {name: round(value, 2) for name, value in boundaries.columns().items()},
                "arousal": [round(float(a), 4) for a in trajectory[:, 0]],
                "valence": [round(float(v), 4) for v in trajectory[:, 1]],
            }
            click.echo(json.dumps(record))
        else:
            click.echo(_summary_line(path, trajectory, boundaries))
    if failures:
        raise QueueemoError(f"{failures} of {len(files)} files could not be analysed")


DEFAULT_CACHE = "~/.cache/queueemo/features"


def _data_options(command):
    command = click.option(
        "--data", "data_dir", required=True, type=click.Path(file_okay=False, exists=True),
        help="The shared data folder (vgmidi/, 4q/, emomusic/).",
    )(command)
    return click.option(
        "--cache", "cache_dir", default=DEFAULT_CACHE, show_default=True, type=click.Path(file_okay=False),
        help="Where decoded log-mel features are cached between runs.",
    )(command)


def _load_audio_sets(data_dir: str, cache_dir: str, front: str = "seed", extra: tuple[str, ...] = ()):
    from queueemo.emotion.training.datasets import load_audio_sets

    return load_audio_sets(Path(data_dir), Path(cache_dir).expanduser(), front, extra, report=_echo_err)


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


@cli.group()
def train() -> None:
    """Train the emotion models from annotated data (see models/README.md)."""


@train.command("clip")
@_data_options
@click.option("--out", "out_dir", default="models", show_default=True, type=click.Path(file_okay=False))
@click.option("--epochs", default=50, show_default=True, help="At most this many epochs.")
@click.option("--seed", default=1234, show_default=True)
@click.option("--emopia/--no-emopia", default=True, show_default=True,
              help="Also train on emopia's piano clips (rendered with fluidsynth on first use).")
@click.option("--members", default=5, show_default=True,
              help="v2: networks in the ensemble (seeds SEED, SEED+1, ...), averaged per window.")
@click.option("--descriptors/--no-descriptors", default=False, show_default=True,
              help="v2: also read each window's acoustic descriptors (loudness, flux, centroid).")
@_model_option
def train_clip_command(
    data_dir: str, cache_dir: str, out_dir: str, epochs: int, seed: int, emopia: bool, members: int,
    descriptors: bool, model: str | None,
) -> None:
    """Train a clip model on vgmidi + 4q (+ emopia); writes clip.pt (seed), clip_v2.pt (v2) or
    clip_v2_lite.npz (v2-lite)."""
    from queueemo.emotion.training import datasets
    from queueemo.emotion.training.train_clip import ClipTraining, train_clip

    front = model or "v2"
    curves, clips = _load_audio_sets(data_dir, cache_dir, front, ("emopia",) if emopia else ())
    extra = None
    if emopia:
        rendered = datasets.load_emopia(Path(data_dir), Path(cache_dir).expanduser(), front=front)
        extra = datasets.splits(rendered)["train"]
    if front != "seed":
        import torch

        from queueemo.emotion.descriptors import N_DESCRIPTORS
        from queueemo.emotion.network import ClipV2Config
        from queueemo.emotion.numpy_head import HEAD_FILES
        from queueemo.emotion.training.train_clip_v2 import ClipV2Training, train_clip_v2

        # The v2 LSTM is small: one thread is faster than two that wait on each other.
        torch.set_num_threads(1)

        info = train_clip_v2(curves=curves, clips=clips, extra_clips=extra, out_dir=Path(out_dir),
                             settings=ClipV2Training(seed=seed, max_epochs=epochs, members=members),
                             network=ClipV2Config(descriptors=N_DESCRIPTORS if descriptors else 0),
                             report=_echo_err, backend=front)
        name, _, suffix = HEAD_FILES[front]
        click.echo(f"wrote {out_dir}/{name}.{suffix} ({info['version']})")
        return
    info = train_clip(
        curves=curves, clips=clips, extra_clips=extra, out_dir=Path(out_dir),
        settings=ClipTraining(seed=seed, max_epochs=epochs), report=_echo_err,
    )
    click.echo(f"wrote {out_dir}/clip.pt ({info['version']})")


@train.command("forecaster")
@_data_options
@click.option("--out", "out_dir", default="models", show_default=True, type=click.Path(file_okay=False))
@click.option("--seed", default=1234, show_default=True)
@click.option("--trajectories/--no-trajectories", default=False, show_default=True,
              help="Also train on the v2 clip model's trajectories of the training audio (per-history "
                   "scale; not the shipped weights, see models/README.md).")
@click.option("--clip-models", "clip_dir", default=None, type=click.Path(file_okay=False, exists=True),
              help="Where the v2 clip model for --trajectories is (default: the installed one).")
def train_forecaster_command(data_dir: str, cache_dir: str, out_dir: str, seed: int, trajectories: bool,
                             clip_dir: str | None) -> None:
    """Train the next-value LSTM on emomusic curves (and v2 trajectories); writes forecaster.npz and .json."""
    from queueemo.emotion.network import ForecasterConfig
    from queueemo.emotion.training import datasets
    from queueemo.emotion.training.evaluate import model_trajectories
    from queueemo.emotion.training.train_forecaster import ForecasterTraining, train_forecaster

    curves = datasets.splits(datasets.load_emomusic(datasets.require_data(Path(data_dir))))
    paths = None
    if trajectories:
        audio_curves, clips = _load_audio_sets(data_dir, cache_dir, "v2")
        weights = Path(clip_dir) if clip_dir else None
        paths = {split: model_trajectories(audio_curves[split] + clips[split], weights)
                 for split in ("train", "val")}
    info = train_forecaster(
        curves=curves, out_dir=Path(out_dir), trajectories=paths,
        settings=ForecasterTraining(seed=seed, relative_loss=trajectories),
        network=ForecasterConfig(normalise=trajectories), report=_echo_err,
    )
    click.echo(f"wrote {out_dir}/forecaster.npz ({info['version']})")


@cli.command()
@_data_options
@click.option("--models", "model_dir", default=None, type=click.Path(file_okay=False, exists=True),
              help="Weights to evaluate (default: the installed ones).")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False),
              help="Also write the numbers to this JSON file.")
@functools.partial(_model_option, help="Evaluate only this clip model (default: all, side by side).")
def evaluate(data_dir: str, cache_dir: str, model_dir: str | None, json_path: str | None,
             model: str | None) -> None:
    """Evaluate the clip models (seed, v2-lite and v2 side by side, or only --model) and the forecaster
    on the held-out test split against baselines."""
    from queueemo.config import EMOTION_MODELS
    from queueemo.emotion.training import datasets
    from queueemo.emotion.training.evaluate import (
        evaluate_clip,
        evaluate_forecaster,
        format_report,
        model_trajectories,
    )

    songs = datasets.splits(datasets.load_emomusic(Path(data_dir)))
    weights = Path(model_dir) if model_dir else None
    clip_rows, forecasts = [], {"emomusic human curves": evaluate_forecaster(songs["test"], weights)}
    counts = {"emomusic songs": len(songs["test"])}
    for front in (model,) if model else EMOTION_MODELS[::-1]:
        curves, clips = _load_audio_sets(data_dir, cache_dir, front)
        clip_rows += evaluate_clip(curves, clips, weights, front)
        held_out = model_trajectories(curves["test"] + clips["test"], weights, front)
        forecasts[f"{front} trajectories of test audio"] = evaluate_forecaster(held_out, weights)
        counts.update({"vgmidi pieces": len(curves["test"]), "4q excerpts": len(clips["test"])})
    click.echo(format_report(clip_rows, forecasts, counts))
    if json_path:
        payload = {"test_counts": counts, "clip": clip_rows, "forecaster": forecasts}
        Path(json_path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


# --- library: scan, status, show (thin shims over queueemo.library) ---------------------------------


DB_URL_FORMS = "a file path, sqlite:////abs/path.sqlite3 or postgresql+psycopg://user@host/db"


def _check_db_url(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    url_like = re.fullmatch(r"[\w+]+://.*", value, re.DOTALL)  # SQLAlchemy's URL shape, without its import
    if not value or (not url_like and re.match(r"[\w+]+:/", value)):  # a URL that lost a slash
        raise click.BadParameter(f"{value!r} is not a database URL; expected {DB_URL_FORMS}")
    return value


# Minutes of an arc or a path: more than a week is a typo (and nan passes click's range checks).
MINUTES = click.FloatRange(min=0, min_open=True, max=7 * 24 * 60)


def _finite(_ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and math.isnan(value):
        raise click.BadParameter(f"{value} is not a number of {param.name}")
    return value


def _db_option(command):
    return click.option(
        "--db", "database_url", default=None, metavar="URL|FILE", callback=_check_db_url,
        help="Library database URL, or a SQLite file's path (default: [library] database_url, "
             "$QUEUEEMO_DB, or XDG data dir).",
    )(command)


def _mpd_options(command):
    command = click.option("--port", type=click.IntRange(1, 65535), default=None,
                           help="MPD's TCP port (default: [mpd] port, $MPD_PORT, 6600).")(command)
    return click.option(
        "--host", default=None, metavar="[PASSWORD@]HOST",
        help="MPD's host, socket path or @abstract socket (default: [mpd] host, $MPD_HOST, "
             "$XDG_RUNTIME_DIR/mpd/socket, /run/mpd/socket, localhost).",
    )(command)


def _overrides(host: str | None, port: int | None, database_url: str | None) -> dict[str, dict]:
    from queueemo.config import split_mpd_host

    mpd: dict[str, object] = {"port": port}
    if host:
        password, mpd["host"] = split_mpd_host(host)
        mpd["password"] = password or None
    return {"mpd": mpd, "library": {"database_url": database_url}}


def _open_library(ctx: click.Context, database_url: str | None, **library: object):
    """Settings and the existing index, for commands that read it (a missing SQLite file is an error)."""
    settings = _library_settings(ctx, database_url, **library)
    return settings, _open_index(settings, create=False)


def _library_settings(ctx: click.Context, database_url: str | None, **library: object):
    from queueemo.config import load_settings

    overrides = {"library": {"database_url": database_url, **library}}
    return load_settings(ctx.obj["config_path"], overrides=overrides)


def _open_index(settings, create: bool = True):
    from queueemo.library.db import open_configured

    return open_configured(settings.database_url, settings.library, create=create)


def _likely_to_analyse(settings, model: str, retry_failed: bool) -> bool:
    """Whether a scan will likely need its workers, asked without SQLAlchemy: an index that is new or
    not readable that way, or one with pending, outdated (or, to retry, failed) tracks. New files on
    disk are found only by the scan itself, which then starts its workers."""
    from queueemo.library.analysis import current_model_version
    from queueemo.library.summary import quick_status

    quick = quick_status(settings.database_url, current_model_version(model), settings.library.password_file)
    if quick is None:
        return True
    counts = quick[0]
    return not counts.total or bool(counts.pending or counts.outdated or (retry_failed and counts.failed))


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread: the scan unwinds as on Ctrl-C (not an ``Exception``,
    so no per-file error handler can mistake it for a bad file)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


class _ScanProgress:
    """A click progress bar on stderr: tracks done/total, tracks/s and ETA."""

    def __init__(self) -> None:
        self.bar = None
        self.started = 0.0

    def __call__(self, done: int, total: int) -> None:
        import time

        if self.bar is None:
            if not total or not sys.stderr.isatty():
                return
            self.bar = click.progressbar(
                length=total, label="analysing", file=sys.stderr, show_pos=True, show_eta=True,
                item_show_func=lambda rate: rate,
            )
            self.bar.render_progress()
            self.started = time.monotonic()
            return
        rate = done / max(time.monotonic() - self.started, 1e-6)
        self.bar.update(1, f"{rate:.1f} tracks/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=None,
              help="Worker processes (default: [library] jobs, 0 = one per CPU).")
@click.option("--retry-failed", is_flag=True,
              help="Try every failed file again (by default only changed files, or after a decoder update).")
@click.option("--worker", is_flag=True,
              help="Share the work with other `scan --worker` processes on a PostgreSQL index.")
@click.option("--lease", "lease_s", type=click.IntRange(min=1, max=7 * 86400), default=600,
              help="Seconds a worker's claim on a track lasts (a dead worker's claims return after it).")
@_db_option
@_model_option
@click.pass_context
def scan(ctx: click.Context, paths: tuple[str, ...], jobs: int | None, retry_failed: bool, worker: bool,
         lease_s: int, database_url: str | None, model: str | None) -> None:
    """Index and analyse the audio files under PATHS (default: [library] music_roots)."""
    from dataclasses import replace

    from queueemo.library.analysis import ModelAnalyser, start_worker_server

    signal.signal(signal.SIGTERM, _raise_terminated)  # stop as cleanly as Ctrl-C: exit 143
    settings = _library_settings(ctx, database_url, jobs=jobs)
    emotion = replace(settings.emotion, model=model) if model else settings.emotion
    parallel = settings.library.jobs != 1 and not worker
    if parallel and _likely_to_analyse(settings, emotion.model, retry_failed):
        start_worker_server(ModelAnalyser(emotion.model))  # it warms up while the index opens

    # Imported after that start: the index code takes ~0.5 s to import, the server's start-up overlaps it.
    from queueemo.library import ScanOptions
    from queueemo.library import scan as scan_library
    from queueemo.library.claims import outdated_under

    library = _open_index(settings)
    options = ScanOptions.from_settings(settings.library, emotion, retry_failed=retry_failed)
    roots = paths or settings.library.music_roots
    outdated = outdated_under(library, options.model_version, roots)
    if outdated:
        click.echo(f"{outdated} tracks were analysed by another model or an older queueemo; re-analysing "
                   f"them with {options.model_version}", err=True)
    progress = _ScanProgress()
    try:
        if worker and library.engine.dialect.name != "sqlite":
            from queueemo.library.claims import work

            summary = work(library, roots, replace(options, jobs=1 if jobs is None else jobs),
                           lease_s=lease_s, progress=progress)
        else:  # one machine: the local pool does the same
            summary = scan_library(library, roots, options, progress=progress)
    finally:
        progress.close()
        library.close()
    click.echo(summary.line() + (" (why: queueemo status --failed)" if summary.failed else ""))


@cli.command()
@click.option("--failed", "list_failed", is_flag=True, help="List the files that failed, with reasons.")
@_db_option
@_model_option
@click.pass_context
def status(ctx: click.Context, list_failed: bool, database_url: str | None, model: str | None) -> None:
    """Counts of analysed, pending and failed tracks in the library (outdated: not analysed by the
    model a scan would use)."""
    from queueemo.config import load_settings
    from queueemo.library.analysis import current_model_version
    from queueemo.library.summary import quick_status

    settings = load_settings(ctx.obj["config_path"], overrides={"library": {"database_url": database_url}})
    try:
        version = current_model_version(model or settings.emotion.model)  # what a scan stores, format too
    except QueueemoError:
        version = None  # no model installed: nothing can be outdated
    quick = None if list_failed else quick_status(settings.database_url, version,
                                                    settings.library.password_file)
    if quick is not None:  # a current index: counted without importing SQLAlchemy (cold start < 1 s)
        counts, workers = quick
        where = _masked(settings.database_url)
    else:
        counts, workers, where = _status_through_library(ctx, database_url, list_failed, version)
        if counts is None:
            return
    click.echo(f"analysed  {counts.analysed:7d}  ({counts.hours:.1f} h)")
    click.echo(f"pending   {counts.pending:7d}")
    click.echo(f"failed    {counts.failed:7d}" + ("  (queueemo status --failed)" if counts.failed else ""))
    if counts.outdated:
        click.echo(f"outdated  {counts.outdated:7d}  (another model or an older queueemo: "
                   "the next scan re-analyses them)")
    click.echo(f"total     {counts.total:7d}  in {where}")
    for worker in workers:
        click.echo(f"worker {worker.name}: {worker.analysed} analysed, {worker.failed} failed, "
                   f"{worker.per_minute:.1f}/min, {worker.claims} claimed now, "
                   + (f"{worker.expired} expired (returning to the queue), " if worker.expired else "")
                   + f"last seen {worker.last_seen:%Y-%m-%d %H:%M:%S} UTC")


def _status_through_library(ctx: click.Context, database_url: str | None, list_failed: bool,
                            version: str | None) -> tuple:
    """``status`` through SQLAlchemy (migrating the index if needed); ``--failed`` prints here."""
    from queueemo.library import display_path, failures, library_status
    from queueemo.library.claims import worker_status

    _, library = _open_library(ctx, database_url)
    try:
        with library.session() as session:
            if list_failed:
                failed = failures(session)
                for path, reason in failed:
                    click.echo(f"{display_path(path)}: {reason}")
                if not failed:
                    click.echo(f"no failed files in {library.where}")
                return None, [], library.where
            return library_status(session, version), worker_status(session), library.where
    finally:
        library.close()


def _masked(url: str) -> str:
    """A SQLite URL's file, or a server URL with its password shown as ``***`` (as SQLAlchemy does)."""
    from queueemo.config import mask_url

    if url.startswith("sqlite"):
        return url.split(":///", 1)[-1]
    return mask_url(url)


def _show_lines(record: dict) -> list[str]:
    lines = [record["path"]]
    tags = record["tags"]
    for name in ("artist", "albumartist", "album", "title", "genre", "tracknumber"):
        if tags[name] is not None:
            lines.append(f"  {name:<12}{tags[name]}")
    if record["duration_s"] is not None:
        minutes, seconds = divmod(round(record["duration_s"]), 60)
        lines.append(f"  {'duration':<12}{minutes}:{seconds:02d}")
    when = (record["analysed_at"] or "")[:19].replace("T", " ")
    if record["status"] == "ok":
        lines.append(f"  {'status':<12}analysed {when} UTC by model {record['model_version']}")
    elif record["status"] == "failed":
        lines.append(f"  {'status':<12}failed {when} UTC: {record['error']}")
    else:
        lines.append(f"  {'status':<12}pending (the next scan analyses it)")
    for name in ("opening", "closing", "mean"):
        if record[name] is not None:
            value = record[name]
            lines.append(f"  {name:<12}arousal {value['arousal']:+.2f}  valence {value['valence']:+.2f}")
    if record["boundaries"] is not None:
        edges = record["boundaries"]
        lines.append(f"  {'sound':<12}from {edges['sound_start_s']:.1f} s, ending (fade/decay) from "
                     f"{edges['ending_start_s']:.1f} s")
        lines.append(f"  {'loudness':<12}opening {edges['opening_lufs']:.1f} LUFS, ending "
                     f"{edges['ending_lufs']:.1f} LUFS")
        lines.append(f"  {'brightness':<12}opening {edges['opening_brightness']:.0f} Hz, ending "
                     f"{edges['ending_brightness']:.0f} Hz")
        if edges["opening_onsets"] is not None:
            lines.append(f"  {'onsets':<12}opening {edges['opening_onsets']:.1f}/s, ending "
                         f"{edges['ending_onsets']:.1f}/s")
    if record["arousal"]:
        from queueemo.audio import WINDOW_SECONDS
        from queueemo.emotion.summary import block_means

        lines.append(f"  trajectory  (mean per 5 s; --json for every {WINDOW_SECONDS:g} s point)")
        for start, a, v in block_means(record["arousal"], record["valence"], round(5 / WINDOW_SECONDS)):
            minutes, seconds = divmod(int(start * WINDOW_SECONDS), 60)
            lines.append(f"    {minutes:3d}:{seconds:02d}  arousal {a:+.2f}  valence {v:+.2f}")
    return lines


@cli.command()
@click.argument("path", metavar="PATH|URI|current")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every trajectory point.")
@_db_option
@click.pass_context
def show(ctx: click.Context, path: str, as_json: bool, database_url: str | None) -> None:
    """A track's tags, emotion summaries and trajectory, from the library.

    PATH is a file; an MPD URI (relative to MPD's music directory) or ``current`` (the song MPD
    plays now) are looked up through MPD.
    """
    from queueemo.library import get_track_by_path, track_record
    from queueemo.player import path_of

    settings, library = _open_library(ctx, database_url)
    try:
        with library.session() as session:
            track = None if path == "current" else get_track_by_path(session, path)
            if track is None and (path == "current" or not os.path.isabs(path)):
                file = path_of(settings.mpd, path)
                track = get_track_by_path(session, file)
                path = f"{path} ({file})"
            if track is None:
                raise QueueemoError(f"{path} is not in the library (run `queueemo scan` on its folder)")
            record = track_record(track)
    finally:
        library.close()
    click.echo(json.dumps(record) if as_json else "\n".join(_show_lines(record)))


@cli.command("config")
@_mpd_options
@_db_option
@click.pass_context
def config_command(ctx: click.Context, host: str | None, port: int | None,
                   database_url: str | None) -> None:
    """Print the effective settings and where each came from (passwords masked)."""
    from queueemo.config import config_file, describe_settings

    rows = describe_settings(ctx.obj["config_path"], overrides=_overrides(host, port, database_url))
    path = config_file(ctx.obj["config_path"], os.environ)
    click.echo(f"# config file: {path}{'' if path.exists() else ' (not present)'}")
    section = None
    for name, key, value, source in rows:
        if name != section:
            click.echo(f"\n[{name}]")
            section = name
        click.echo(f"{key} = {json.dumps(list(value) if isinstance(value, tuple) else value)}"
                   f"  # {source}")


@cli.command("next")
@click.option("-n", "count", default=1, show_default=True, type=click.IntRange(min=1),
              help="How many tracks to pick.")
@click.option("--dry-run", is_flag=True, help="Only print the picks; leave MPD's queue alone.")
@click.option("--explain", is_flag=True, help="Show the reference, its forecast and the candidates.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per pick per line.")
@click.option("--from", "follow", default=None, metavar="FILE|URI",
              help="Follow this song instead of the queue's last.")
@click.option("--arc", default=None, metavar="POINTS",
              help="Follow an emotion arc, e.g. calm:energetic or -0.5,0.2:0.6,0.4 (arousal,valence).")
@click.option("--minutes", default=30.0, show_default=True, type=MINUTES, callback=_finite,
              help="Length of the --arc.")
@_mpd_options
@_db_option
@click.pass_context
def next_command(ctx: click.Context, count: int, dry_run: bool, explain: bool, as_json: bool,
                 follow: str | None, arc: str | None, minutes: float,
                 host: str | None, port: int | None, database_url: str | None) -> None:
    """Pick tracks that follow the queue seamlessly and append them to MPD's queue."""
    from queueemo.config import load_settings
    from queueemo.queueing import queue_next

    if arc is None and ctx.get_parameter_source("minutes") is not click.core.ParameterSource.DEFAULT:
        raise QueueemoError("--minutes is the length of an --arc: give --arc too "
                            "(for about N minutes of tracks to a song: queueemo path FROM TO --minutes N)")
    settings = load_settings(ctx.obj["config_path"], overrides=_overrides(host, port, database_url))
    path = None
    if arc is not None:
        from queueemo.arc import parse_arc

        path = parse_arc(arc, minutes)
    picks = queue_next(settings, count, dry_run=dry_run, explain=5 if explain or as_json else 0,
                       follow=follow, arc=path)
    _echo_picks(picks, explain=explain, as_json=as_json)


def _echo_picks(picks, *, explain: bool, as_json: bool) -> None:
    from queueemo.pick_report import explain_pick, pick_record

    for pick in picks:
        if as_json:
            click.echo(json.dumps(pick_record(pick)))
        elif explain:
            click.echo(explain_pick(pick))
        else:
            click.echo(pick.uri)


@cli.command("path")
@click.argument("start", metavar="FROM")
@click.argument("end", metavar="TO")
@click.option("-n", "count", default=None, type=click.IntRange(min=1),
              help="Tracks after FROM, TO included.")
@click.option("--minutes", default=None, type=MINUTES, callback=_finite,
              help="About this long after FROM (default 30 minutes).")
@click.option("--dry-run", is_flag=True, help="Only print the picks; leave MPD's queue alone.")
@click.option("--explain", is_flag=True, help="Show each step's target and the candidates.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per pick per line.")
@_mpd_options
@_db_option
@click.pass_context
def path_command(ctx: click.Context, start: str, end: str, count: int | None, minutes: float | None,
                 dry_run: bool, explain: bool, as_json: bool,
                 host: str | None, port: int | None, database_url: str | None) -> None:
    """Queue FROM, then tracks moving in even emotional steps to TO (files or MPD URIs)."""
    from queueemo.config import load_settings
    from queueemo.queueing import queue_path

    if count is not None and minutes is not None:
        raise QueueemoError("give -n or --minutes, not both")
    settings = load_settings(ctx.obj["config_path"], overrides=_overrides(host, port, database_url))
    picks = queue_path(settings, start, end, count=count,
                       minutes=minutes, dry_run=dry_run, explain=5 if explain or as_json else 0)
    _echo_picks(picks, explain=explain, as_json=as_json)


@cli.command("plot")
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--queue", "of_queue", is_flag=True, help="Draw MPD's queue as a path in the A–V plane.")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="PNG file to write.")
@_db_option
@click.pass_context
def plot_command(ctx: click.Context, files: tuple[str, ...], of_queue: bool, out_path: str,
                 database_url: str | None) -> None:
    """Draw tracks' arousal and valence over time (boundaries marked), or the queue's path."""
    from queueemo.plot import plot_queue, plot_tracks

    if bool(files) == of_queue:
        raise QueueemoError("give FILE... or --queue (one of them)")
    settings, library = _open_library(ctx, database_url)
    try:
        if of_queue:
            from queueemo.player import Player

            with Player(settings.mpd) as player:
                plot_queue(library, player, Path(out_path))
        else:
            plot_tracks(library, [Path(f) for f in files], Path(out_path))
    finally:
        library.close()
    click.echo(f"wrote {out_path}")


@cli.command()
@_mpd_options
@_db_option
@click.pass_context
def daemon(ctx: click.Context, host: str | None, port: int | None, database_url: str | None) -> None:
    """Keep MPD's queue going (see systemd/queueemo.service); logs go to stderr.

    Exits with 78 (EX_CONFIG) on a permanent error: bad config, unusable index, refused password;
    with 75 (EX_TEMPFAIL) when no database server answers at start (systemd tries again).
    """
    from queueemo.config import load_settings
    from queueemo.daemon import Daemon
    from queueemo.errors import AccessError, ConfigError, DatabaseError
    from queueemo.library.db import server_unreachable

    package_log = logging.getLogger("queueemo")
    if ctx.obj["log_level"] is None:
        package_log.setLevel(min(package_log.getEffectiveLevel(), logging.INFO))
    if package_log.getEffectiveLevel() > logging.DEBUG:  # the scheduler's job bookkeeping is not news
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        settings = load_settings(ctx.obj["config_path"], overrides=_overrides(host, port, database_url))
        Daemon(settings).run()
    except DatabaseError as exc:
        package_log.error("cannot keep the queue: %s", exc)
        ctx.exit(EX_TEMPFAIL if server_unreachable(exc) else EX_CONFIG)
    except (ConfigError, AccessError) as exc:
        package_log.error("cannot keep the queue: %s", exc)
        ctx.exit(EX_CONFIG)


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
    except _Terminated:
        click.echo("terminated", err=True)
        sys.exit(143)
    sys.exit(status if isinstance(status, int) else 0)
