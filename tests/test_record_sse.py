"""`record --from`: the SSE parser, and the client against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from smicast.encode import snapshot_json
from smicast.include import DEFAULT_SECTIONS, Section
from smicast.record.reader import iter_frames
from smicast.record.recorder import record_stream
from smicast.record.source_sse import SourceError, SourceUrl, parse_source, sse_frames
from smicast.record.sse import SseEvent, SseParser
from smicast.record.writer import TraceWriter
from smicast.schema import Snapshot, utc_timestamp
from tests.fakes import make_process, make_snapshot

T0 = 1_000_000


def frame(i: int) -> Snapshot:
    return make_snapshot(
        timestamp=utc_timestamp(T0 + i), hostname="agent", processes=[make_process()]
    )


def feed_all(parser: SseParser, chunks: list[bytes]) -> list[SseEvent]:
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_parser_follows_the_sse_rules() -> None:
    parser = SseParser()
    stream = (
        b"retry: 3000\n\n"
        b": keep-alive\n\n"
        b'event: snapshot\nid: 7\ndata: {"a":\ndata: 1}\n\n'
        b'event: lag\ndata: {"dropped":2}\r\n\r\n'
        b"data:no space\rid\r\r"
        b"event: ignored-without-data\n\n"
    )
    # Every split point, including between the CR and the LF of a CRLF.
    for cut in range(len(stream) + 1):
        parser = SseParser()
        events = feed_all(parser, [stream[:cut], stream[cut:]])
        assert events == [
            SseEvent("snapshot", b'{"a":\n1}', "7"),
            SseEvent("lag", b'{"dropped":2}', "7"),
            SseEvent("message", b"no space", ""),
        ], cut
        assert parser.retry_ms == 3000
        assert parser.comments == 1


def test_parser_drops_oversized_lines_and_events_without_buffering_them() -> None:
    parser = SseParser(max_bytes=64)
    chunks = [b"event: snapshot\ndata: ", b"x" * 50, b"y" * 50, b"z" * 50, b"\n\n"]
    chunks += [b"event: snapshot\ndata: ok\n\n"]
    chunks += [b"data: " + b"a" * 40 + b"\n", b"data: " + b"b" * 40 + b"\n\n"]  # event too big
    chunks += [b"data: fine\n\n"]
    events = feed_all(parser, chunks)
    assert [e.data for e in events] == [b"ok", b"fine"]
    assert parser.oversized == 2
    assert len(parser._buf) <= 64


@pytest.mark.parametrize(
    ("text", "url", "label"),
    [
        ("http://node1:9090", "http://node1:9090/events", "http://node1:9090/events"),
        ("http://node1:9090/", "http://node1:9090/events", "http://node1:9090/events"),
        ("https://u:secret@gw/node1/events", "https://gw/node1/events", "https://gw/node1/events"),
        (
            "http://[::1]:9090/proxy/",
            "http://[::1]:9090/proxy/events",
            "http://[::1]:9090/proxy/events",
        ),
        ("unix:/run/smicast.sock", "http://localhost/events", "unix:/run/smicast.sock"),
        ("unix:///run/smicast.sock", "http://localhost/events", "unix:/run/smicast.sock"),
    ],
)
def test_source_urls(text: str, url: str, label: str) -> None:
    source = parse_source(text)
    assert (source.url, source.label) == (url, label)


@pytest.mark.parametrize(
    "text",
    ["ftp://node1/", "node1:9090", "file:///etc/passwd", "unix:", "http://", "http://h:99999"],
)
def test_bad_source_urls(text: str) -> None:
    with pytest.raises(ValueError, match="invalid --from"):
        parse_source(text)


Handler = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def agent(handler: Handler, unix_path: Path | None = None) -> AsyncIterator[SourceUrl]:
    """A tiny agent that answers /events with `handler(request, connection_number)`."""
    connections = 0

    async def events(request: web.Request) -> web.StreamResponse:
        nonlocal connections
        connections += 1
        return await handler(request, connections)

    app = web.Application()
    app.router.add_get("/events", events)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    if unix_path is not None:
        site: web.BaseSite = web.UnixSite(runner, str(unix_path))
    else:
        site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        if unix_path is not None:
            yield parse_source(f"unix:{unix_path}")
        else:
            port = runner.addresses[0][1]
            yield parse_source(f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


async def open_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    return resp


async def hold(resp: web.StreamResponse) -> web.StreamResponse:
    """Keep the stream open with keep-alives until the client hangs up."""
    while True:
        await asyncio.sleep(0.05)
        await resp.write(b": keep-alive\n\n")


def snapshot_event(i: int, *, crlf: bool = False) -> bytes:
    data = snapshot_json(frame(i))
    text = b"event: snapshot\nid: %d\ndata: %s\n\n" % (i, data)
    return text.replace(b"\n", b"\r\n") if crlf else text


class Recorder:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.sleeps: list[float] = []
        self.seen: list[dict[str, str]] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)


async def take(frames: AsyncIterator[Snapshot], n: int) -> list[Snapshot]:
    out = []
    async for snap in frames:
        out.append(snap)
        if len(out) == n:
            break
    await frames.aclose()  # type: ignore[attr-defined]
    return out


def test_frames_lag_heartbeats_and_reconnect_with_last_event_id() -> None:
    log = Recorder()

    async def handler(request: web.Request, n: int) -> web.StreamResponse:
        log.seen.append({"last": request.headers.get("Last-Event-ID", ""), **dict(request.query)})
        resp = await open_stream(request)
        if n == 1:
            await resp.write(b"retry: 3000\n\n" + snapshot_event(1) + b": keep-alive\n\n")
            await resp.write(b'event: lag\ndata: {"dropped":3}\n\n' + snapshot_event(2))
            return resp  # the agent goes away
        await resp.write(snapshot_event(3, crlf=True))
        return await hold(resp)

    async def main() -> list[Snapshot]:
        async with agent(handler) as source:
            sections = frozenset({Section.GPU, Section.PROCESS})
            return await take(sse_frames(source, sections, warn=log.warn, sleep=log.sleep), 3)

    frames = asyncio.run(main())
    assert [f.timestamp for f in frames] == [utc_timestamp(T0 + i) for i in (1, 2, 3)]
    assert frames[0].processes == [make_process()]
    assert frames[0].cpus is msgspec_unset()  # not asked for: dropped even if sent
    assert [s["last"] for s in log.seen] == ["", "2"]
    assert log.seen[0]["include"] == "gpu,process" and log.seen[0]["heartbeat"] == "15"
    assert any("dropped" in w for w in log.warnings)
    assert any("stream ended" in w for w in log.warnings)
    assert log.sleeps == [3.0]  # the agent's retry hint


def msgspec_unset() -> object:
    from msgspec import UNSET

    return UNSET


def test_unix_socket_and_retry_after_a_503(tmp_path: Path) -> None:
    log = Recorder()

    async def handler(request: web.Request, n: int) -> web.StreamResponse:
        if n == 1:
            return web.json_response({"error": "busy"}, status=503, headers={"Retry-After": "5"})
        resp = await open_stream(request)
        await resp.write(snapshot_event(1))
        return await hold(resp)

    async def main() -> list[Snapshot]:
        async with agent(handler, unix_path=tmp_path / "agent.sock") as source:
            return await take(
                sse_frames(source, DEFAULT_SECTIONS, warn=log.warn, sleep=log.sleep), 1
            )

    assert len(asyncio.run(main())) == 1
    assert log.sleeps == [5.0]
    assert "HTTP 503" in log.warnings[0]


@pytest.mark.parametrize(
    ("status", "content_type", "body", "message"),
    [
        (404, "text/plain", b"nope", "HTTP 404"),
        (200, "application/json", b"{}", "not an event stream"),
        (200, "text/event-stream", b'event: snapshot\ndata: {"schema":2}\n\n', "schema 2"),
    ],
)
def test_answers_that_cannot_succeed_stop_the_recording(
    status: int, content_type: str, body: bytes, message: str
) -> None:
    async def handler(request: web.Request, n: int) -> web.StreamResponse:
        return web.Response(status=status, body=body, content_type=content_type)

    async def main() -> None:
        async with agent(handler) as source:
            await take(sse_frames(source, DEFAULT_SECTIONS, warn=print, sleep=Recorder().sleep), 1)

    with pytest.raises(SourceError, match=message):
        asyncio.run(main())


def test_a_broken_frame_is_skipped_with_a_warning() -> None:
    log = Recorder()

    async def handler(request: web.Request, n: int) -> web.StreamResponse:
        resp = await open_stream(request)
        await resp.write(b"event: snapshot\ndata: {broken\n\n" + snapshot_event(1))
        return await hold(resp)

    async def main() -> list[Snapshot]:
        async with agent(handler) as source:
            return await take(
                sse_frames(source, DEFAULT_SECTIONS, warn=log.warn, sleep=log.sleep), 1
            )

    assert len(asyncio.run(main())) == 1
    assert "not a schema-1 snapshot" in log.warnings[0]


def test_record_stream_writes_every_frame_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson.zst"
    writer = TraceWriter(path, hosts=["http://agent/events"], interval_ms=0)

    async def source() -> AsyncIterator[Snapshot]:
        for i in range(5):
            yield frame(i)
        await asyncio.sleep(10)  # a quiet agent: only the stop ends this
        yield frame(99)

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, stop.set)
        await record_stream(source(), writer, stop=stop)

    asyncio.run(main())
    writer.close()
    assert [f.timestamp for f in iter_frames([path])] == [frame(i).timestamp for i in range(5)]
    header = json.loads(_first_line(path))
    assert header["hosts"] == ["http://agent/events"] and header["interval_ms"] == 0


def test_record_stream_flushes_on_a_timer_when_the_source_goes_quiet(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson.zst"
    writer = TraceWriter(path, hosts=["x"], interval_ms=0, flush_every_s=0.1)
    on_disk: list[int] = []

    async def source() -> AsyncIterator[Snapshot]:
        for i in range(3):
            yield frame(i)  # the first is flushed at once, the next two wait for a flush
        await asyncio.sleep(3600)  # the agent goes quiet
        yield frame(99)

    async def main() -> None:
        stop = asyncio.Event()

        async def watch() -> None:
            # What a crash would leave: the file as it is on disk, read while recording.
            for _ in range(500):
                await asyncio.sleep(0.01)
                on_disk.append(len(list(iter_frames([path]))))
                if on_disk[-1] == 3:
                    break
            stop.set()

        watcher = asyncio.create_task(watch())
        await record_stream(source(), writer, stop=stop)
        await watcher

    asyncio.run(main())
    assert on_disk[-1] == 3  # flushed with no further frame arriving
    writer.close()


def test_record_stream_stops_after_the_duration(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson"
    writer = TraceWriter(path, hosts=["x"], interval_ms=0)

    async def source() -> AsyncIterator[Snapshot]:
        i = 0
        while True:
            yield frame(i)
            i += 1
            await asyncio.sleep(0.01)

    asyncio.run(record_stream(source(), writer, duration_s=0.2, stop=asyncio.Event()))
    writer.close()
    assert 3 <= len(list(iter_frames([path]))) <= 40


def _first_line(path: Path) -> bytes:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(path.read_bytes(), read_across_frames=True)
    return reader.read().split(b"\n", 1)[0]
