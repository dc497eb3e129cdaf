"""Cost of `smicast view` in a real terminal, beside Glances and btop in the same run.

Every subject runs alone in a tmux pane of 160x50 at a 1 s refresh:

- `smicast view --simulate nvidia:8` and `--simulate nvidia:64` (the collection of
  this machine's CPU, memory, chassis and processes runs in the viewer's process and
  is counted with it, as all-smi's local mode counts its own);
- Glances' terminal UI (`glances -t 1`, from a separate virtual environment:
  GLANCES=path or bench/out/glances-venv/bin/glances);
- btop (Debian package, `update_ms = 1000` in a private config).

Figures per subject, medians over `--runs` runs:

- first full screen: process start until the pane shows the subject's marker text
  (`capture-pane` polled every 2 ms through a tmux control-mode client);
- CPU: the process's CPU time over a `--seconds` window after a 3 s settling
  period, in percent of one core;
- key to screen (smicast view only): `send-keys 1` (hide / show the GPU panel)
  until `capture-pane` shows the change, p50 and p99 over `--presses` presses. Both
  go through one tmux control-mode client (a command is a line on a pipe, answered in
  well under a millisecond), polled every millisecond; the figure includes tmux's
  own handling of the key and of the output. (Until this version a `tmux` process
  was started for every poll, 10 ms apart: several ms of polling delay and of CPU
  taken from the subject were in the figure.)

Replay: a one-hour trace at 1 s (3,600 frames of 8 simulated GPUs with processes,
zstd) is opened as `smicast view --replay` opens it, and a seek to the middle is
timed with the decoding of the frame it lands on (target: open < 2 s, seek at once).

Targets: CPU <= 2 % of a core with 8 GPUs and <= 4 % with 64; key to screen
p99 < 50 ms; first full screen < 1 s. The machine may be shared: figures from a
busy machine are higher, and the comparison inside one run is what counts.

    .venv/bin/python bench/view.py [--seconds 20] [--runs 3] [--presses 30]
                                   [--only "64 GPUs"] [--no-replay]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
SIZE = (160, 50)
TARGETS = {"smicast view, 8 GPUs": 2.0, "smicast view, 64 GPUs": 4.0}


@dataclass
class Subject:
    name: str
    argv: list[str]
    marker: Callable[[str], bool]  # the first full screen is on the pane
    env: dict[str, str] = field(default_factory=dict)
    keys: bool = False  # measure key-to-screen latency


class Tmux:
    def __init__(self) -> None:
        self.tmux = shutil.which("tmux") or sys.exit("bench/view.py needs tmux")
        self.server = f"smicast-bench-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str) -> str:
        return subprocess.run(
            [self.tmux, "-L", self.server, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "bench")

    def kill(self) -> None:
        subprocess.run([self.tmux, "-L", self.server, "kill-server"], capture_output=True)


class Control:
    """A tmux control-mode client of the session: each command is a line over one pipe.

    Polling the screen through it costs a fraction of a millisecond and no new process
    (a `tmux capture-pane` process per poll took a few ms, and its CPU was taken from
    the subject on a 2-core machine). The pane's output is not sent to this client
    (`no-output`); it only answers commands.
    """

    def __init__(self, tmux: Tmux) -> None:
        self.proc = subprocess.Popen(
            [tmux.tmux, "-L", tmux.server, "-C", "attach-session", "-t", "bench"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        self.run("refresh-client -f no-output")

    def _send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def _block(self) -> list[str]:
        """The lines of the next answer to a command of this client: a %begin ... %end
        (or %error) block whose flags are 1 (tmux answers the attach itself, at a time of
        its choosing, with flags 0)."""
        assert self.proc.stdout is not None
        out: list[str] = []
        inside = ours = False
        for line in self.proc.stdout:
            if line.startswith("%begin "):
                inside, ours, out = True, line.split()[-1] == "1", []
            elif inside and line.startswith(("%end ", "%error ")):
                if ours:
                    return out
                inside = False
            elif inside:
                out.append(line.rstrip("\n"))
        raise RuntimeError("the tmux control client ended")

    def run(self, command: str) -> list[str]:
        """The output of one command."""
        self._send(command)
        return self._block()

    def screen(self) -> str:
        return "\n".join(self.run("capture-pane -p -t bench"))

    def close(self) -> None:
        self.proc.kill()  # a control client waits for its pipe; the session lives on
        self.proc.wait(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def cpu_seconds(proc: psutil.Process) -> float:
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def wait_screen(
    screen: Callable[[], str], test: Callable[[str], bool], timeout_s: float, poll_s: float = 0.0
) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if test(screen()):
            return time.monotonic() - start
        time.sleep(poll_s)
    return None


def one_run(subject: Subject, seconds: float, presses: int) -> dict[str, float]:
    tmux = Tmux()
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(subject.env)
    command = "exec " + " ".join(_quote(a) for a in subject.argv)
    control: Control | None = None
    try:
        started = time.monotonic()
        subprocess.run(
            [
                tmux.tmux,
                "-L",
                tmux.server,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "bench",
                "-x",
                str(SIZE[0]),
                "-y",
                str(SIZE[1]),
                command,
            ],
            env=env,
            check=True,
            timeout=10,
        )
        control = Control(tmux)
        first = wait_screen(control.screen, subject.marker, 30.0, poll_s=0.002)
        first_s = (time.monotonic() - started) if first is not None else float("nan")
        pid = int(tmux("display-message", "-p", "-t", "bench", "#{pane_pid}").strip())
        proc = psutil.Process(pid)
        time.sleep(3.0)
        cpu0, t0 = cpu_seconds(proc), time.monotonic()
        time.sleep(seconds)
        cpu_pct = (cpu_seconds(proc) - cpu0) / (time.monotonic() - t0) * 100
        result = {"first_s": first_s, "cpu_pct": cpu_pct}
        if subject.keys:
            lat = key_latencies(control, presses)
            result["key_p50_ms"] = statistics.median(lat)
            result["key_p99_ms"] = sorted(lat)[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
        return result
    finally:
        if control is not None:
            control.close()
        tmux.kill()


def key_latencies(control: Control, presses: int) -> list[float]:
    out = []
    for _ in range(presses):
        shown = "▔GPUs▔" in control.screen()
        t0 = time.monotonic()
        control.run("send-keys -t bench 1")
        took = wait_screen(
            control.screen, lambda s, was=shown: ("▔GPUs▔" in s) != was, 5.0, poll_s=0.001
        )
        out.append((time.monotonic() - t0) * 1000 if took is not None else float("nan"))
        time.sleep(0.15)
    return out


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def subjects(config_dir: Path) -> list[Subject]:
    python = str(REPO / ".venv" / "bin" / "python")
    view = [python, "-m", "smicast", "view", "--interval", "1"]
    found: list[Subject] = [
        Subject(
            "smicast view, 8 GPUs",
            [*view, "--simulate", "nvidia:8"],
            lambda s: "GPUs 8" in s and "GPU processes" in s,
            keys=True,
        ),
        Subject(
            "smicast view, 64 GPUs",
            [*view, "--simulate", "nvidia:64"],
            lambda s: "GPUs 64" in s and "▔GPUs▔" in s,
            keys=True,
        ),
    ]
    glances = os.environ.get("GLANCES") or str(REPO / "bench/out/glances-venv/bin/glances")
    if Path(glances).exists():
        found.append(
            Subject("glances -t 1", [glances, "-t", "1"], lambda s: "MEM" in s and "LOAD" in s)
        )
    else:
        print(f"(glances not found at {glances}: skipped)")
    btop = shutil.which("btop")
    if btop:
        conf = config_dir / "btop"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "btop.conf").write_text("update_ms = 1000\n")
        found.append(
            Subject(
                "btop (update_ms 1000)",
                [btop, "--utf-force"],
                lambda s: "cpu" in s and "mem" in s and "proc" in s,
                env={"XDG_CONFIG_HOME": str(config_dir), "LANG": "C.UTF-8"},
            )
        )
    else:
        print("(btop not installed: skipped)")
    return found


def replay_figures(tmp: Path, runs: int) -> tuple[float, float, float]:
    """(open s, seek ms, MiB held) for a one-hour 8-GPU trace, medians over `runs`."""
    import msgspec

    sys.path.insert(0, str(REPO))
    from smicast.record.writer import TraceWriter
    from smicast.schema import utc_timestamp
    from smicast.view.replay import ReplaySource, Trace
    from tests.view_support import T0, simulated_frames

    path = tmp / "hour.ndjson.zst"
    frames = simulated_frames(8, 120)
    writer = TraceWriter(path, hosts=["gpu-node-01"], interval_ms=1000)
    for i in range(3600):
        writer.write(msgspec.structs.replace(frames[i % 120], timestamp=utc_timestamp(T0 + i)))
    writer.close()
    opens, seeks = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        trace = Trace([path])
        opens.append(time.perf_counter() - t0)
        source = ReplaySource(trace)
        t0 = time.perf_counter()
        source.jump_to(1800)
        source._event()
        seeks.append((time.perf_counter() - t0) * 1000)
    held = sum(map(len, trace.lines)) / 2**20
    return statistics.median(opens), statistics.median(seeks), held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="CPU window per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--presses", type=int, default=30)
    parser.add_argument("--only", default="", help="run only subjects whose name has this text")
    parser.add_argument("--no-replay", action="store_true", help="skip the replay figures")
    args = parser.parse_args()
    print(
        f"tmux {SIZE[0]}x{SIZE[1]}, 1 s refresh, {args.runs} runs x {args.seconds:g} s; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start "
        "(a shared machine: compare within the run)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        table = []
        for subject in subjects(Path(tmp)):
            if args.only not in subject.name:
                continue
            runs = [one_run(subject, args.seconds, args.presses) for _ in range(args.runs)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            table.append((subject.name, med))
            print(f"  {subject.name}: " + ", ".join(f"{k}={v:.3g}" for k, v in med.items()))
    print()
    print(
        f"{'subject':<26} {'CPU % core':>10} {'first screen s':>15} {'key p50 ms':>11} {'key p99 ms':>11}"
    )
    for name, med in table:
        target = TARGETS.get(name)
        cpu = f"{med['cpu_pct']:.2f}" + (f" (<= {target:g})" if target else "")
        print(
            f"{name:<26} {cpu:>10} {med['first_s']:>15.2f} "
            f"{med.get('key_p50_ms', float('nan')):>11.1f} {med.get('key_p99_ms', float('nan')):>11.1f}"
        )
    if not args.no_replay:
        with tempfile.TemporaryDirectory() as tmp:
            open_s, seek_ms, held = replay_figures(Path(tmp), args.runs)
        print(
            f"replay of a one-hour trace (3,600 frames, 8 GPUs): open {open_s:.2f} s (< 2), "
            f"seek to the middle {seek_ms:.2f} ms, {held:.0f} MiB held"
        )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
