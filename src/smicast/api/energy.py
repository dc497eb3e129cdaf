"""`GET /energy`: the energy totals as JSON, for the dashboard.

Per device (GPU by index and UUID, the host's CPU and chassis) the kWh since this
agent started and the lifetime total behind `all_smi_energy_consumed_joules_total`.
An smicast addition: all-smi has no such route. A recording has no energy account:
`{"since": null, "devices": []}` then (a 200, so a browser logs no failed load).
"""

from __future__ import annotations

from aiohttp import web

from smicast.api.handlers import JSON_TYPE, NO_STORE, STATE
from smicast.encode import value_json


async def energy(request: web.Request) -> web.StreamResponse:
    account = request.app[STATE].energy
    report = account.report() if account is not None else {"since": None, "devices": []}
    body = value_json(report)
    return web.Response(body=body + b"\n", content_type=JSON_TYPE, headers=NO_STORE)
