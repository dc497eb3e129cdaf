"""`GET /energy`: the energy totals as JSON, for the dashboard.

Per device (GPU by index and UUID, the host's CPU and chassis) the kWh since this
agent started and the lifetime total behind `all_smi_energy_consumed_joules_total`.
An smicast addition: all-smi has no such route. 404 when serving a recording.
"""

from __future__ import annotations

from aiohttp import web

from smicast.api.handlers import JSON_TYPE, NO_STORE, STATE, json_error
from smicast.encode import value_json


async def energy(request: web.Request) -> web.StreamResponse:
    account = request.app[STATE].energy
    if account is None:
        return json_error(404, "not_found", "no energy accounting while serving a recording")
    body = value_json(account.report())
    return web.Response(body=body + b"\n", content_type=JSON_TYPE, headers=NO_STORE)
