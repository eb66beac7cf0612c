"""Daemon footprint: RSS after startup and CPU seconds over a minute of idle beside MPD.

    python bench/daemon_idle.py [--seconds 60] [--tracks 2000]

Starts a throw-away MPD (null output, stopped: nothing plays) and ``queueemo daemon`` on a
synthetic index, waits until the daemon said READY=1, filled the queue to its watermark (so the
forecaster is loaded) and finished the rescan it runs at start, then reads /proc/PID. Targets: RSS ≤
250 MB, idle CPU ≈ 0.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _queuebench import child_env, proc_status_mb, queue_length, running_mpd, wait_for, write_index

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--tracks", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="queueemo-bench-") as tmp:
        root = Path(tmp)
        url = f"sqlite:///{root / 'index.sqlite3'}"
        with running_mpd(root / "mpd", songs=min(args.tracks, 200)) as sock:
            write_index(url, root / "mpd" / "music", args.tracks, known=min(args.tracks, 200))
            notify_path = str(root / "notify.sock")
            notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            notify.bind(notify_path)
            notify.settimeout(120)
            env = child_env(MPD_HOST=sock, QUEUEEMO_DB=url, XDG_CONFIG_HOME=tmp,
                            NOTIFY_SOCKET=notify_path)
            started = time.perf_counter()
            log = root / "daemon.log"
            daemon = subprocess.Popen(
                [sys.executable, "-c", "from queueemo.cli import main; main()", "daemon"],
                env=env, stderr=log.open("wb"),
            )
            try:
                assert notify.recv(64) == b"READY=1"
                ready = time.perf_counter() - started
                wait_for(lambda: queue_length(sock) >= 2, timeout=120, what="the first top-up")
                filled = time.perf_counter() - started
                wait_for(lambda: "rescan: " in log.read_text(errors="replace"), timeout=300,
                         what="the start-up rescan")
                rescanned = time.perf_counter() - started
                time.sleep(2)
                rss = proc_status_mb(daemon.pid)
                before = cpu_seconds(daemon.pid)
                time.sleep(args.seconds)
                idle_cpu = cpu_seconds(daemon.pid) - before
                print(f"daemon READY=1 after {ready:.1f} s, queue filled after {filled:.1f} s, "
                      f"start-up rescan done after {rescanned:.1f} s")
                print(f"  RSS after startup: {rss:.0f} MB  (target ≤ 250 MB)")
                print(f"  CPU over {args.seconds:.0f} s idle: {idle_cpu:.2f} s")
            finally:
                daemon.terminate()
                print(f"  exit status after SIGTERM: {daemon.wait(30)}")
                notify.close()


if __name__ == "__main__":
    main()
