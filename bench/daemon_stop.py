"""Time from SIGTERM to exit of ``queueemo daemon``: during a watcher batch, and idle as the baseline.

    python bench/daemon_stop.py [--runs 3] [--files 12] [--seconds 60]

Each run starts a throw-away MPD and the daemon, waits for READY=1, then either sends SIGTERM at
once (idle baseline) or first drops ``--files`` tracks of ``--seconds`` into the music folder and
sends SIGTERM one second after the analysis workers appeared (the batch would take far longer).
Prints the medians and their ratio; the target is a stop within a few seconds whatever runs.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _queuebench import child_env, running_mpd, wait_for


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def one_run(root: Path, *, batch: bool, files: int, seconds: float) -> float:
    import soundfile

    url = f"sqlite:///{root / 'index.sqlite3'}"
    with running_mpd(root / "mpd", songs=2) as sock:
        notify_path = str(root / "notify.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        notify.settimeout(120)
        config = root / "config.toml"
        config.write_text("[daemon]\nwatermark = 1\ndebounce_s = 0.3\n", encoding="utf-8")
        env = child_env(MPD_HOST=sock, QUEUEEMO_DB=url, XDG_CONFIG_HOME=str(root),
                        NOTIFY_SOCKET=notify_path)
        log = (root / "daemon.log").open("w+b")
        daemon = subprocess.Popen(
            [sys.executable, "-c", "from queueemo.cli import main; main()", "--config", str(config),
             "daemon"], env=env, stderr=log)
        try:
            assert notify.recv(64) == b"READY=1"
            if batch:
                batch_dir = root / "mpd" / "music" / "batch"
                batch_dir.mkdir()
                t = np.arange(int(seconds * 44_100)) / 44_100
                for i in range(files):
                    tone = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t)
                    soundfile.write(str(batch_dir / f"{i}.flac"), tone.astype(np.float32), 44_100)
                wait_for(lambda: children(daemon.pid), timeout=60, what="analysis workers")
                time.sleep(1.0)
            started = time.perf_counter()
            daemon.terminate()
            code = daemon.wait(120)
            took = time.perf_counter() - started
            if code != 0:
                log.seek(0)
                raise SystemExit(f"daemon exited {code}:\n{log.read().decode(errors='replace')}")
            return took
        finally:
            if daemon.poll() is None:
                daemon.kill()
            notify.close()
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    times: dict[bool, list[float]] = {False: [], True: []}
    for run in range(args.runs):
        for batch in (False, True):
            with tempfile.TemporaryDirectory(prefix="queueemo-bench-") as tmp:
                took = one_run(Path(tmp), batch=batch, files=args.files, seconds=args.seconds)
            times[batch].append(took)
            print(f"run {run + 1}: {'batch' if batch else 'idle '} {took:.2f} s", flush=True)
    idle, during = statistics.median(times[False]), statistics.median(times[True])
    print(f"SIGTERM → exit, median of {args.runs}: idle {idle:.2f} s, during a batch of "
          f"{args.files} × {args.seconds:.0f} s files {during:.2f} s ({during / idle:.1f}× idle)")


if __name__ == "__main__":
    main()
