"""Credentials reach the agent and nothing else: not a log line, not a tile, not a label."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from aiohttp import web

from smicast.encode import snapshot_json
from smicast.fleet.auth import AuthError, load_token, ssl_context
from smicast.fleet.client import ClientOptions
from smicast.fleet.hosts import parse_host
from smicast.fleet.source import FleetSource
from tests.fakes import make_gpu, make_snapshot
from tests.fleet_harness import AppAgent, Feeder

TOKEN = "s3cret-T0KEN-value"
PASSWORD = "pa55-w0rd-value"


def guarded_agent(seen: list[str | None]) -> web.Application:
    """An agent that serves /events only with `Bearer TOKEN` or basic auth `ops:PASSWORD`."""
    import base64

    basic = "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode()
    frame = snapshot_json(make_snapshot(hostname="guarded", gpus=[make_gpu()]))

    async def events(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization")
        seen.append(auth)
        if auth not in (f"Bearer {TOKEN}", basic):
            return web.json_response({"error": "unauthorized"}, status=401)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i in range(1, 100):
            await resp.write(b"event: snapshot\nid: %d\ndata: %b\n\n" % (i, frame))
            await asyncio.sleep(0.05)
        return resp

    app = web.Application()
    app.router.add_get("/events", events)
    return app


def test_token_and_basic_auth_are_sent_and_never_shown(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str | None] = []
    agent, other = AppAgent(guarded_agent(seen)), AppAgent(guarded_agent(seen))
    try:
        with_token = parse_host(agent.url)
        with_basic = parse_host(f"http://ops:{PASSWORD}@localhost:{agent.port}/")
        wrong = parse_host(f"http://ops:wrong-{PASSWORD}@{other.url}")
        assert PASSWORD not in with_basic.label + repr(with_basic) + wrong.label + repr(wrong)
        source = FleetSource(
            [with_token, with_basic, wrong],
            ClientOptions(token=TOKEN, min_backoff_s=0.05, max_backoff_s=0.2),
        )

        async def scenario() -> None:
            async with Feeder(source) as feed:
                links = source.links
                await feed.until(
                    lambda: (
                        links[with_token.label].frames >= 2
                        and links[with_basic.label].frames >= 2
                        and links[wrong.label].error is not None
                    )
                )
                shown = [str(link.error) + link.label + repr(link) for link in links.values()] + [
                    str(h.source_error) + h.key for h in feed.model
                ]
                assert "refused the credentials" in str(links[wrong.label].error)
                for text in shown:
                    assert TOKEN not in text and PASSWORD not in text

        asyncio.run(scenario())
    finally:
        agent.stop()
        other.stop()
    assert f"Bearer {TOKEN}" in seen
    assert any(s is not None and s.startswith("Basic ") for s in seen)
    out = capsys.readouterr()
    logged = caplog.text + out.out + out.err
    assert TOKEN not in logged and PASSWORD not in logged


def test_token_sources_in_order(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}\n")
    env = {"SMICAST_AUTH_TOKEN": "from-smicast", "ALL_SMI_AUTH_TOKEN": "from-all-smi"}
    assert load_token(token_file, env) == TOKEN
    assert load_token(None, env) == "from-smicast"
    assert load_token(None, {"ALL_SMI_AUTH_TOKEN": "from-all-smi"}) == "from-all-smi"
    assert load_token(None, {}) is None
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(AuthError, match="empty"):
        load_token(tmp_path / "empty", {})
    (tmp_path / "spaced").write_text("two words")
    with pytest.raises(AuthError) as info:
        load_token(tmp_path / "spaced", {})
    assert "two words" not in str(info.value)
    with pytest.raises(AuthError, match="No such file"):
        load_token(tmp_path / "missing", {})


def test_https_agents_are_verified_against_cacert(tmp_path: Path) -> None:
    import ssl

    from tests.tls_material import make_pki

    pki = make_pki(tmp_path / "pki")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(pki.cert, pki.key)
    seen: list[str | None] = []
    agent = AppAgent(guarded_agent(seen), ssl_context=server_ctx)
    try:
        spec = parse_host(f"https://localhost:{agent.port}")
        trusted = FleetSource(
            [spec], ClientOptions(token=TOKEN, ssl_context=ssl_context(pki.ca), max_backoff_s=0.2)
        )
        untrusted = FleetSource([spec], ClientOptions(token=TOKEN, max_backoff_s=0.2))

        async def scenario() -> None:
            async with Feeder(trusted) as feed:
                await feed.until(lambda: trusted.links[spec.label].frames >= 2)
            async with Feeder(untrusted) as feed:
                link = untrusted.links[spec.label]
                await feed.until(lambda: link.error is not None)
                assert link.frames == 0 and "certificate" in link.error.lower()  # type: ignore[union-attr]

        asyncio.run(scenario())
    finally:
        agent.stop()
    assert spec.label == f"https://localhost:{agent.port}"
