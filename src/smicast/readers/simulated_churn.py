"""Live readings of a simulated device that move as real ones do, between identical frames.

Real GPUs do not hold still where the simulation could: an NVIDIA part drops to P8
when idle and flips between P0 and P2 under load, and a PCIe link trains down to
Gen1 at idle and back up under load. These are live values (typed fields and
their gauges), never identity, so a simulated node exercises the rule that
`all_smi_gpu_info` does not churn while its readings do.

Each `DeviceChurn` draws from a generator of its own (seeded from the reader's
seed), so adding churn leaves every other simulated value unchanged, and a seed
and a sequence of loads give the same states every time. The chances are
constructor arguments so a harsher scenario can turn them up.
"""

from __future__ import annotations

import random
from typing import Final

IDLE_BELOW_UTIL: Final = 10.0  # P8 and a trained-down link under this utilization
PSTATE_BUSY: Final = 0
PSTATE_BUSY_ALT: Final = 2  # memory-bound phases: NVML reports P2 under load
PSTATE_IDLE: Final = 8
IDLE_LINK_GENERATION: Final = 1


class DeviceChurn:
    """P-state and PCIe link of one device, stepped once per read from its utilization."""

    __slots__ = (
        "_link_down_chance",
        "_max_generation",
        "_pstate_flip_chance",
        "_rng",
        "_with_pstates",
        "alt_pstate",
        "link_generation",
        "link_width",
    )

    def __init__(
        self,
        rng: random.Random,
        *,
        pstates: bool,
        link: tuple[int, int] | None,
        util: float,
        pstate_flip_chance: float = 0.05,
        link_down_chance: float = 0.5,
    ) -> None:
        self._rng = rng
        self._with_pstates = pstates
        self._pstate_flip_chance = pstate_flip_chance
        self._link_down_chance = link_down_chance
        self._max_generation = link[0] if link else None
        self.link_width = link[1] if link else None
        self.alt_pstate = False
        idle = util < IDLE_BELOW_UTIL
        self.link_generation = IDLE_LINK_GENERATION if idle and link else self._max_generation

    def step(self, util: float) -> int | None:
        """Move to this read's state; returns the P-state (None for parts without one)."""
        rnd = self._rng.random
        idle = util < IDLE_BELOW_UTIL
        if self._max_generation is not None:
            if not idle:
                self.link_generation = self._max_generation  # retrains at once under load
            elif self.link_generation != IDLE_LINK_GENERATION and rnd() < self._link_down_chance:
                self.link_generation = IDLE_LINK_GENERATION
        if not self._with_pstates:
            return None
        if idle:
            self.alt_pstate = False
            return PSTATE_IDLE
        if rnd() < self._pstate_flip_chance:
            self.alt_pstate = not self.alt_pstate
        return PSTATE_BUSY_ALT if self.alt_pstate else PSTATE_BUSY
