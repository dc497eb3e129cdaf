"""A driver whose nvmlInit() never returns: how long `snapshot` and `api` take to answer.

A stand-in `pynvml` module on PYTHONPATH sleeps for an hour in `nvmlInit()`, the
reproduction of a GPU that fell off the bus. Beside it, the same command with GPU
detection off (`SMICAST_NO_GPU=1`), so the figures separate what the hang costs
from what starting Python costs on this machine. Medians of several runs.

- snapshot: process start to exit of `smicast snapshot --include gpu,memory --timeout-ms MS`
  (expected: the baseline plus about MS);
- api: process start to the first answer of `/-/ready` on its Unix socket (expected: the
  baseline; the hung reader only shows later, as a `timeout` entry and an error count).

    .venv/bin/python bench/hung_driver.py [--runs 5] [--timeout-ms 500]
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMICAST = (sys.executable, "-m", "smicast")
STANDIN = "import time\n\n\ndef nvmlInit():\n    time.sleep(3600)\n"


def snapshot_s(env: dict[str, str], timeout_ms: int) -> float:
    began = time.monotonic()
    subprocess.run(
        [*SMICAST, "snapshot", "--include", "gpu,memory", "--timeout-ms", str(timeout_ms)],
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    return time.monotonic() - began


def ready_status(path: Path) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(str(path))
    conn = http.client.HTTPConnection("localhost")
    conn.sock = sock
    try:
        conn.request("GET", "/-/ready")
        return conn.getresponse().status
    finally:
        conn.close()


def api_ready_s(env: dict[str, str], timeout_ms: int, path: Path) -> tuple[float, int]:
    options = ["--interval", str(max(1.0, 2 * timeout_ms / 1000)), "--timeout-ms", str(timeout_ms)]
    began = time.monotonic()
    proc = subprocess.Popen(
        [*SMICAST, "api", "--port", "0", "--socket", str(path), *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit("api exited before answering")
            try:
                status = ready_status(path)
            except OSError:
                time.sleep(0.005)
                continue
            return time.monotonic() - began, status
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout-ms", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pynvml.py").write_text(STANDIN)
        base = {k: v for k, v in os.environ.items() if k != "SMICAST_NO_GPU"}
        base["SMICAST_STATE_DIR"] = str(root / "state")
        hung = {**base, "PYTHONPATH": os.pathsep.join([str(root), base.get("PYTHONPATH", "")])}
        plain = {**base, "SMICAST_NO_GPU": "1"}
        print(f"runs: {args.runs}, --timeout-ms {args.timeout_ms}, {os.cpu_count()} CPUs")
        for label, env in (("no GPU detection", plain), ("nvmlInit hangs", hung)):
            snaps = [snapshot_s(env, args.timeout_ms) for _ in range(args.runs)]
            readies = [
                api_ready_s(env, args.timeout_ms, root / f"s{i}.sock") for i in range(args.runs)
            ]
            statuses = sorted({status for _, status in readies})
            print(
                f"{label:>17}: snapshot exits after {statistics.median(snaps):.3f} s, "
                f"api answers /-/ready after {statistics.median(s for s, _ in readies):.3f} s "
                f"(status {', '.join(map(str, statuses))})"
            )


if __name__ == "__main__":
    main()
