"""Real soundtrack libraries for the transitions benchmark, from installed Debian game-music packages.

    python bench/make_library.py OUT [--library first|second] [--min-seconds 20]

Two disjoint libraries (``dpkg -L``; install the packages with apt first):

- ``first`` (59 tracks): asc-music, drascula-music, freedroidrpg-data, megaglest-data
  (fb-music-high's one tracker module is skipped: MPD and ffmpeg read it differently);
- ``second`` (61 tracks): wesnoth-1.16-music, pingus-data (tracker modules, rendered by ffmpeg),
  lincity-ng-data, frozen-bubble-data.

Music files only (folders named ``music``, drascula's ``audio``, frozen-bubble's ``*zik*``; no sound
effects), at least ``--min-seconds`` long. Each game is one artist and one album; files are written
in rotating formats (ogg copy, mp3, flac, opus, m4a) with ffmpeg, tagged artist/album/title. OUT
must be outside the repo: the audio stays out of it.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

LIBRARIES = {
    "first": {
        "asc-music": "Advanced Strategic Command",
        "drascula-music": "Drascula",
        "freedroidrpg-data": "FreedroidRPG",
        "megaglest-data": "MegaGlest",
    },
    "second": {
        "wesnoth-1.16-music": "Battle for Wesnoth",
        "pingus-data": "Pingus",
        "lincity-ng-data": "LinCity-NG",
        "frozen-bubble-data": "Frozen Bubble",
    },
}
FORMATS = [
    (".ogg", ["-c:a", "copy"]),
    (".mp3", ["-c:a", "libmp3lame", "-q:a", "4"]),
    (".flac", ["-c:a", "flac"]),
    (".opus", ["-c:a", "libopus", "-b:a", "96k"]),
    (".m4a", ["-c:a", "aac", "-b:a", "128k"]),
]


def music_files(package: str) -> list[Path]:
    """The package's music files (no sound effects, no translated duplicates)."""
    listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True).stdout
    found = []
    for line in listing.splitlines():
        path = Path(line)
        parts = {p.casefold() for p in path.parts}
        if path.suffix.lower() not in {".ogg", ".mp3", ".it", ".s3m"}:
            continue
        if "music" in parts or path.parent.name == "audio" or "titles" in parts or "zik" in path.stem:
            found.append(path)
    return sorted(set(found))


def seconds(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                          "csv=p=0", str(path)], capture_output=True, text=True).stdout.strip()
    try:
        return float(out)
    except ValueError:
        return 0.0


def build(out: Path, min_seconds: float, library: str = "first") -> int:
    """Write the library named ``library`` under ``out``; returns the number of tracks (existing files
    are kept)."""
    count = 0
    for package, game in LIBRARIES[library].items():
        folder = out / package
        folder.mkdir(parents=True, exist_ok=True)
        for source in music_files(package):
            if seconds(source) < min_seconds:
                continue
            suffix, codec = FORMATS[count % len(FORMATS)]
            if suffix == ".ogg" and source.suffix.lower() != ".ogg":
                suffix, codec = FORMATS[1]
            target = folder / f"{source.stem}{suffix}"
            count += 1
            if target.exists():
                continue
            subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-map", "0:a:0", *codec,
                 "-metadata", f"artist={game}", "-metadata", f"album={game} (soundtrack)",
                 "-metadata", f"title={source.stem}", str(target)],
                check=True,
            )
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--library", choices=sorted(LIBRARIES), default="first")
    parser.add_argument("--min-seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(f"{build(args.out, args.min_seconds, args.library)} tracks in {args.out}")


if __name__ == "__main__":
    main()
