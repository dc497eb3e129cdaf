"""`all_smi_energy_consumed_joules_total`, the one counter family, last in the exposition.

Label shapes and value format as all-smi's exporter: `{host, scope="gpu", gpu_index,
gpu_uuid}`, `{host, scope="cpu"}`, `{host, scope="chassis"}`, three decimals. A device
that never had a power reading in this process has no line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from smicast.energy.meter import EnergyRow, Scope
from smicast.prometheus.text import Family, Samples, fixed, labels

ENERGY_FAMILY: Final = Family(
    "all_smi_energy_consumed_joules_total", "Cumulative energy consumption in Joules.", "counter"
)


def render_energy(rows: Sequence[EnergyRow]) -> str:
    samples = Samples()
    name = ENERGY_FAMILY.name
    for row in rows:
        key = row.key
        if key.scope is Scope.GPU:
            pairs: tuple[tuple[str, str], ...] = (
                ("host", key.host),
                ("scope", "gpu"),
                ("gpu_index", str(row.gpu_index)),
                ("gpu_uuid", key.device),
            )
        else:
            pairs = (("host", key.host), ("scope", key.scope.value))
        samples.add(name, labels(pairs), fixed(row.total_j, 3))
    out: list[str] = []
    samples.write((ENERGY_FAMILY,), out)
    return "".join(out)
