"""Where smicast keeps what must outlive a restart (the energy totals).

`--state-dir` wins, then `SMICAST_STATE_DIR`, then systemd's `STATE_DIRECTORY`
(a unit with `StateDirectory=smicast`), then `/var/lib/smicast` for root and
`$XDG_STATE_HOME/smicast` (default `~/.local/state/smicast`) for anyone else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

ROOT_STATE_DIR: Final = Path("/var/lib/smicast")


def default_state_dir(
    environ: Mapping[str, str] = os.environ,
    *,
    euid: int | None = None,
    home: Path | None = None,
) -> Path:
    explicit = environ.get("SMICAST_STATE_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    systemd = environ.get("STATE_DIRECTORY", "").split(":")[0].strip()
    if systemd and Path(systemd).is_absolute():
        return Path(systemd)
    if (os.geteuid() if euid is None else euid) == 0:
        return ROOT_STATE_DIR
    xdg = environ.get("XDG_STATE_HOME", "").strip()
    # The XDG spec: a relative value is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "smicast"
    if home is None:
        try:
            home = Path.home()
        except RuntimeError:  # no HOME and no passwd entry: a relative path, said in the log
            home = Path()
    return home / ".local" / "state" / "smicast"
