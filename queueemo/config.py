"""Typed, frozen settings: defaults ← config file ← environment ← command-line flags.

The config file is TOML at ``$XDG_CONFIG_HOME/queueemo/config.toml`` (or ``--config``/``QUEUEEMO_CONFIG``).
Every section and key is optional; unknown keys are reported with a "did you mean" hint.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from queueemo.errors import ConfigError, QueueemoError

APP_NAME = "queueemo"


def default_config_path() -> Path:
    """Where the config file is looked for when none is given."""
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_database_url() -> str:
    """SQLite file under the user's XDG data directory."""
    import platformdirs

    return f"sqlite:///{Path(platformdirs.user_data_dir(APP_NAME)) / 'library.sqlite3'}"


@dataclass(frozen=True)
class LibrarySettings:
    """Where the music is and how it is indexed."""

    database_url: str = ""
    password_file: str = ""  # first line is the database password (else the URL's, or ~/.pgpass)
    music_roots: tuple[str, ...] = ()
    root_names: tuple[str, ...] = ()  # "name=/mount/point": tracks under it are stored by name
    jobs: int = 0  # 0 = one worker per CPU
    opening_windows: int = 20  # 10 s at 2 Hz
    closing_windows: int = 20


@dataclass(frozen=True)
class MpdSettings:
    """How to reach MPD (defaults follow MPD_HOST / MPD_PORT / MPD_TIMEOUT like other MPD clients).

    ``host`` is a name, a socket path or ``@abstract``; left empty, ``load_settings`` fills in the first
    socket that exists of ``$XDG_RUNTIME_DIR/mpd/socket`` and ``/run/mpd/socket``, else ``localhost``.
    """

    host: str = ""
    port: int = 6600
    password: str = ""
    music_directory: str = ""  # empty: ask MPD (works over a local socket)
    timeout_s: float = 10.0


@dataclass(frozen=True)
class PickerSettings:
    """The rules the picker follows."""

    repeat_window_hours: float = 4.0
    artist_spacing: int = 3
    exclude_globs: tuple[str, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    tie_tolerance: float = 0.05
    seed_track: str = ""  # empty: a random analysed track
    forecast_steps: int = 1
    album_spacing: int = 3
    avoid_duplicates: bool = True  # same normalised artist + title = the same song on another release
    min_choice_share: float = 0.3  # spacing/duplicate rules relax while they leave less of the pool
    loudness_weight: float = 0.8  # × loudness jump (in library spreads) added to the emotion distance
    brightness_weight: float = 0.8  # × brightness jump (in library spreads); chosen by bench/transitions.py
    onset_weight: float = 0.4  # × onset-density jump (log2, in library spreads); chosen likewise
    mode: str = "flow"  # "flow" follows the forecast; "arc" follows [picker] arc over arc_minutes
    arc: str = "calm:energetic"
    arc_minutes: float = 60.0
    arc_state_file: str = ""  # when the arc began, kept across restarts (empty: XDG state dir)


@dataclass(frozen=True)
class DaemonSettings:
    """How the daemon keeps the queue."""

    watermark: int = 2
    keep_played: int = 20
    rescan_interval_hours: float = 24.0
    history_days: float = 30.0
    watch: bool = True
    debounce_s: float = 2.0
    reconnect_min_s: float = 5.0  # first wait after MPD could not be reached; doubles each time
    reconnect_max_s: float = 60.0
    suspend_after_user_s: float = 30.0  # after the user clears the queue or adds songs; 0: never wait
    act_in_single_or_repeat: bool = False  # keep the queue even while MPD is in single or repeat mode


# Clip-model backends (queueemo.emotion.backends); the first is the default.
EMOTION_MODELS = ("v2", "v2-lite", "seed")


@dataclass(frozen=True)
class EmotionSettings:
    """Which clip model analyses audio."""

    model: str = EMOTION_MODELS[0]


@dataclass(frozen=True)
class Settings:
    """All settings, validated once."""

    library: LibrarySettings = field(default_factory=LibrarySettings)
    mpd: MpdSettings = field(default_factory=MpdSettings)
    picker: PickerSettings = field(default_factory=PickerSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    emotion: EmotionSettings = field(default_factory=EmotionSettings)

    @property
    def database_url(self) -> str:
        """The database URL, with the XDG default filled in; a plain file path is a SQLite file."""
        url = self.library.database_url or default_database_url()
        if "://" not in url:
            return f"sqlite:///{Path(url).expanduser().absolute()}"
        return url

    @property
    def arc_state_path(self) -> Path:
        """Where the start of the configured arc is kept, with the XDG default filled in."""
        import platformdirs

        explicit = self.picker.arc_state_file
        return Path(explicit) if explicit else Path(platformdirs.user_state_dir(APP_NAME)) / "arc.json"


_SECTIONS: dict[str, type] = {
    "library": LibrarySettings,
    "mpd": MpdSettings,
    "picker": PickerSettings,
    "daemon": DaemonSettings,
    "emotion": EmotionSettings,
}


def _hint(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _coerce(section: str, key: str, value: Any, expected: Any) -> Any:
    """Turn a TOML/env value into the dataclass field's type, or explain why not."""
    where = f"[{section}] {key}"
    try:
        if expected in ("tuple[str, ...]",):
            if isinstance(value, str):
                value = [part for part in value.split(",") if part]
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise TypeError
            return tuple(value)
        if expected == "bool":
            if isinstance(value, str):
                if value.lower() not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                    raise ValueError
                return value.lower() in {"1", "true", "yes", "on"}
            if not isinstance(value, bool):
                raise TypeError
            return value
        if expected == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError  # int(2.5) would quietly make it 2
            return int(value)
        if expected == "float":
            if isinstance(value, bool):
                raise TypeError
            number = float(value)
            if not math.isfinite(number):  # nan passes every range check; inf overflows timers
                raise ValueError
            return number
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not a valid {expected}") from None


def _build(raw: Mapping[str, Mapping[str, Any]]) -> Settings:
    errors: list[str] = []
    sections: dict[str, Any] = {}
    for section, values in raw.items():
        if section not in _SECTIONS:
            errors.append(f"unknown section [{section}]{_hint(section, list(_SECTIONS))}")
            continue
        cls = _SECTIONS[section]
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in fields:
                errors.append(f"unknown key [{section}] {key}{_hint(key, list(fields))}")
                continue
            try:
                kwargs[key] = _coerce(section, key, value, fields[key])
            except ConfigError as exc:
                errors.append(str(exc))
        sections[section] = cls(**kwargs)
    if errors:
        raise ConfigError("invalid configuration: " + "; ".join(errors))
    settings = Settings(**sections)
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    problems = []
    if settings.library.jobs < 0:
        problems.append("[library] jobs must be ≥ 0")
    if settings.library.opening_windows < 1 or settings.library.closing_windows < 1:
        problems.append("[library] opening_windows and closing_windows must be ≥ 1")
    if not 0 < settings.mpd.port < 65536:
        problems.append("[mpd] port must be between 1 and 65535")
    if settings.picker.artist_spacing < 0 or settings.picker.repeat_window_hours < 0:
        problems.append("[picker] artist_spacing and repeat_window_hours must be ≥ 0")
    if settings.picker.album_spacing < 0 or not 0 < settings.picker.min_choice_share <= 1:
        problems.append("[picker] album_spacing must be ≥ 0 and min_choice_share in (0, 1]")
    weights = settings.picker.loudness_weight, settings.picker.brightness_weight, settings.picker.onset_weight
    if min(weights) < 0:
        problems.append("[picker] loudness_weight, brightness_weight and onset_weight must be ≥ 0")
    if settings.picker.mode not in {"flow", "arc"} or settings.picker.arc_minutes <= 0:
        problems.append('[picker] mode must be "flow" or "arc", and arc_minutes > 0')
    elif settings.picker.mode == "arc":
        from queueemo.arc import parse_arc  # numpy: imported only for an arc to check

        try:
            parse_arc(settings.picker.arc, settings.picker.arc_minutes)
        except QueueemoError as exc:
            problems.append(f"[picker] arc: {exc}")
    if settings.daemon.watermark < 1:
        problems.append("[daemon] watermark must be ≥ 1")
    if settings.daemon.keep_played < 0:
        problems.append("[daemon] keep_played must be ≥ 0")
    if settings.daemon.suspend_after_user_s < 0:
        problems.append("[daemon] suspend_after_user_s must be ≥ 0")
    if not 0 < settings.daemon.reconnect_min_s <= settings.daemon.reconnect_max_s:
        problems.append("[daemon] reconnect_min_s must be > 0 and ≤ reconnect_max_s")
    if settings.emotion.model not in EMOTION_MODELS:
        problems.append(f"[emotion] model must be one of {', '.join(EMOTION_MODELS)}"
                        f"{_hint(settings.emotion.model, list(EMOTION_MODELS))}")
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))


def _environment(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Settings from the environment: MPD_HOST/MPD_PORT/MPD_TIMEOUT and QUEUEEMO_<SECTION>_<KEY>."""
    raw: dict[str, dict[str, str]] = {}
    if env.get("MPD_HOST"):
        password, host = split_mpd_host(env["MPD_HOST"])
        if password:
            raw.setdefault("mpd", {})["password"] = password
        raw.setdefault("mpd", {})["host"] = host
    if env.get("MPD_PORT"):
        raw.setdefault("mpd", {})["port"] = env["MPD_PORT"]
    if env.get("MPD_TIMEOUT"):
        raw.setdefault("mpd", {})["timeout_s"] = env["MPD_TIMEOUT"]
    if env.get("QUEUEEMO_DB"):
        raw.setdefault("library", {})["database_url"] = env["QUEUEEMO_DB"]
    for name, value in env.items():
        if not name.startswith("QUEUEEMO_") or name in {"QUEUEEMO_DB", "QUEUEEMO_CONFIG"}:
            continue
        section, _, key = name[len("QUEUEEMO_") :].lower().partition("_")
        if section in _SECTIONS and key:
            raw.setdefault(section, {})[key] = value
    return raw


def split_mpd_host(value: str) -> tuple[str, str]:
    """``MPD_HOST`` as MPD clients read it: ``password@host``, split at the *first* ``@``.

    A leading ``@`` is an abstract socket, not a password: ``@sock`` is the socket ``@sock``, and
    ``pw@@sock`` is the password ``pw`` for the abstract socket ``@sock``.
    """
    if value.startswith("@") or "@" not in value:
        return "", value
    password, host = value.split("@", 1)
    return password, host


def default_mpd_host(env: Mapping[str, str], exists: Callable[[str], bool] = os.path.exists) -> str:
    """Where MPD is when nothing says so: the user's, then the system's socket, else localhost."""
    candidates = [os.path.join(env["XDG_RUNTIME_DIR"], "mpd", "socket")] if env.get("XDG_RUNTIME_DIR") else []
    candidates.append("/run/mpd/socket")
    return next((path for path in candidates if exists(path)), "localhost")


def _merge(*layers: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for section, values in layer.items():
            if not isinstance(values, Mapping):
                raise ConfigError(f"[{section}] must be a table of settings")
            merged.setdefault(section, {}).update(values)
    return merged


Layers = list[tuple[str, Mapping[str, Mapping[str, Any]]]]


def config_file(config_path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """The config file that is read: ``--config``, else ``$QUEUEEMO_CONFIG``, else the XDG default."""
    explicit = config_path or env.get("QUEUEEMO_CONFIG")
    return Path(explicit) if explicit else default_config_path()


def _layers(config_path: str | os.PathLike[str] | None, env: Mapping[str, str],
            overrides: Mapping[str, Mapping[str, Any]] | None) -> Layers:
    """The named layers, lowest first: file, env, flag (defaults are the dataclasses')."""
    explicit = config_path or env.get("QUEUEEMO_CONFIG")
    path = config_file(config_path, env)
    from_file: dict[str, Any] = {}
    if path.exists():
        try:
            from_file = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    elif explicit:
        raise ConfigError(f"config file {path} does not exist")
    cleaned = {
        section: {k: v for k, v in values.items() if v is not None}
        for section, values in (overrides or {}).items()
    }
    return [(f"file {path}", from_file), ("env", _environment(env)), ("flag", cleaned)]


def _finish(settings: Settings, env: Mapping[str, str]) -> Settings:
    """Fill in the MPD host when none was given and expand ``~`` in paths."""
    mpd = settings.mpd
    host = os.path.expanduser(mpd.host) if mpd.host else default_mpd_host(env)
    mpd = dataclasses.replace(mpd, host=host, music_directory=os.path.expanduser(mpd.music_directory))
    library = dataclasses.replace(settings.library, music_roots=tuple(
        os.path.expanduser(root) for root in settings.library.music_roots))
    return dataclasses.replace(settings, mpd=mpd, library=library)


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Read defaults, then the config file, the environment and explicit overrides (flags)."""
    env = os.environ if env is None else env
    layers = _layers(config_path, env, overrides)
    return _finish(_build(_merge(*(values for _, values in layers))), env)


def describe_settings(
    config_path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[tuple[str, str, object, str]]:
    """Every effective setting as ``(section, key, value, source)``; secrets masked.

    ``source`` is ``default``, ``file PATH``, ``env`` or ``flag`` (the last layer that set it).
    """
    env = os.environ if env is None else env
    layers = _layers(config_path, env, overrides)
    settings = _finish(_build(_merge(*(values for _, values in layers))), env)
    rows = []
    for section, cls in _SECTIONS.items():
        values = getattr(settings, section)
        for item in dataclasses.fields(cls):
            source = "default"
            for name, layer in layers:
                if item.name in layer.get(section, {}):
                    source = name
            value = getattr(values, item.name)
            if section == "mpd" and item.name == "host" and source == "default":
                source = "default (first of $XDG_RUNTIME_DIR/mpd/socket, /run/mpd/socket, localhost)"
            if section == "mpd" and item.name == "password" and value:
                value = "***"
            if section == "library" and item.name == "database_url":
                value = mask_url(value or settings.database_url)
            rows.append((section, item.name, value, source))
    return rows


def mask_url(url: str) -> str:
    """A database URL with its password replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"
