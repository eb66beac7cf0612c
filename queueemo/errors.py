"""Exceptions raised by queueemo.

The tree::

    QueueemoError              anything queueemo knows how to explain in one line
    ├── AudioError             a file cannot be decoded (missing, empty, truncated, not audio)
    ├── ModelError             shipped weights missing or made for other audio settings
    ├── DatabaseError          the index cannot be opened, migrated or written
    ├── PlayerError            MPD unreachable, refused us, or lacks a command we need
    │   └── AccessError        MPD refused the password or withholds commands: permanent
    └── ConfigError            a setting is invalid

The CLI turns every ``QueueemoError`` into one line on stderr and exit code 1.
"""

from __future__ import annotations


class QueueemoError(Exception):
    """Base class: the message is meant to be shown to a user as it is."""


class AudioError(QueueemoError):
    """A file could not be decoded into audio."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelError(QueueemoError):
    """Model weights are missing, damaged or do not match the code."""


class DatabaseError(QueueemoError):
    """The library index cannot be used."""


class PlayerError(QueueemoError):
    """MPD could not be reached or did not do what was asked."""


class AccessError(PlayerError):
    """MPD refused the password or does not allow a command we need (retrying cannot help)."""


class ConfigError(QueueemoError):
    """A configuration value is invalid."""
