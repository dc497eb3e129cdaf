"""An immutable published frame and its encodings, each computed at most once.

Every client of a frame shares the same bytes: the JSON for one include set is
encoded once, the SSE event and its HTTP chunk framing once, the Prometheus text
(and its gzip) once. A frame is only touched from the event loop thread.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Final

from smicast.encode import select, snapshot_json
from smicast.include import Section
from smicast.schema import Snapshot

Sections = frozenset[Section]

# Level 1: /metrics is re-rendered every frame; fastest level is ~5x smaller already.
_GZIP_LEVEL: Final = 1


def http_chunk(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk: subscribers' transports receive these bytes as they are."""
    return b"%x\r\n%b\r\n" % (len(payload), payload)


def sse_event(event: str, data: bytes, event_id: int | None = None) -> bytes:
    head = b"event: %b\n" % event.encode()
    if event_id is not None:
        head += b"id: %d\n" % event_id
    return head + b"data: " + data + b"\n\n"


class Frame:
    __slots__ = (
        "_chunks",
        "_json",
        "_metrics",
        "_metrics_gz",
        "_render_metrics",
        "published_at",
        "seq",
        "snapshot",
    )

    def __init__(
        self,
        seq: int,
        snapshot: Snapshot,
        published_at: float,
        render_metrics: Callable[[Snapshot], bytes],
    ) -> None:
        self.seq = seq
        self.snapshot = snapshot
        self.published_at = published_at  # monotonic seconds
        self._render_metrics = render_metrics
        self._json: dict[Sections, bytes] = {}
        self._chunks: dict[Sections, bytes] = {}
        self._metrics: bytes | None = None
        self._metrics_gz: bytes | None = None

    def json(self, sections: Sections) -> bytes:
        data = self._json.get(sections)
        if data is None:
            data = self._json[sections] = snapshot_json(select(self.snapshot, sections))
        return data

    def sse_chunk(self, sections: Sections) -> bytes:
        """`event: snapshot` with this frame's id, framed as an HTTP chunk."""
        chunk = self._chunks.get(sections)
        if chunk is None:
            chunk = self._chunks[sections] = http_chunk(
                sse_event("snapshot", self.json(sections), self.seq)
            )
        return chunk

    def metrics(self) -> bytes:
        if self._metrics is None:
            self._metrics = self._render_metrics(self.snapshot)
        return self._metrics

    def metrics_gzip(self) -> bytes:
        if self._metrics_gz is None:
            self._metrics_gz = gzip.compress(self.metrics(), compresslevel=_GZIP_LEVEL, mtime=0)
        return self._metrics_gz
