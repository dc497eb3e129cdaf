"""An incremental Server-Sent Events parser (the WHATWG rules), bounded in memory.

Lines end with CRLF, LF or CR; `data:` lines of one event are joined with LF; a
blank line dispatches; `:` starts a comment (keep-alives); `id:` persists across
events as the Last-Event-ID. A line or an event longer than `max_bytes` is
dropped whole and counted, never buffered past the bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from smicast.record.format import MAX_LINE_BYTES


def _find_eol(buf: bytes | bytearray, at: int) -> tuple[int, int] | None:
    """(start, end) of the first CRLF, LF or CR from `at`; memchr scans, not a regex
    (a 30 KB frame line costs microseconds instead of milliseconds)."""
    lf = buf.find(b"\n", at)
    cr = buf.find(b"\r", at, lf if lf >= 0 else len(buf))
    if cr >= 0:
        return cr, cr + 2 if cr + 1 == lf else cr + 1
    return (lf, lf + 1) if lf >= 0 else None


@dataclass(frozen=True)
class SseEvent:
    event: str  # "message" when the event named none
    data: bytes
    id: str | None  # the last event id seen so far on this stream


class SseParser:
    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.last_event_id: str | None = None
        self.retry_ms: int | None = None
        self.comments = 0
        self.oversized = 0
        self._buf = bytearray()
        self._scan = 0  # where the next end-of-line search starts
        self._skip_line = False  # the rest of an oversized line
        self._event = ""
        self._data: list[bytes] = []
        self._data_bytes = 0
        self._drop_event = False
        self._started = False

    def feed(self, chunk: bytes) -> list[SseEvent]:
        buf = self._buf
        # A chunk that starts with nothing pending is parsed where it lies, and a line's
        # value is copied once, out of a memoryview: a 30 KB frame is not copied five times.
        data: bytes | bytearray = chunk
        if buf:
            buf += chunk
            data = buf
        if not self._started and len(data) >= 3:
            self._started = True
            if data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]
        events: list[SseEvent] = []
        pos = 0
        with memoryview(data) as view:
            while (eol := _find_eol(data, max(pos, self._scan))) is not None:
                start, end = eol
                if end == len(data) and end == start + 1 and data[start] == 0x0D:
                    break  # a CR at the end may be the first half of a CRLF
                at, pos = pos, end
                if self._skip_line:
                    self._skip_line = False
                else:
                    self._line(data, view, at, start, events)
        if data is buf:
            del buf[:pos]
        else:
            buf[:] = data[pos:]
        self._scan = max(0, len(buf) - 1)
        if len(buf) > self.max_bytes:
            buf.clear()
            self._scan = 0
            if not self._skip_line:
                self._skip_line = self._drop_event = True
                self.oversized += 1
        return events

    def _line(
        self, data: bytes | bytearray, view: memoryview, at: int, end: int, events: list[SseEvent]
    ) -> None:
        """The line `data[at:end]`."""
        if at == end:
            self._dispatch(events)
            return
        if data[at] == 0x3A:  # ":"
            self.comments += 1
            return
        colon = data.find(b":", at, end)
        if colon < 0:
            name, value_at = bytes(view[at:end]), end
        else:
            name, value_at = bytes(view[at:colon]), colon + 1
            if value_at < end and data[value_at] == 0x20:  # one space after the colon
                value_at += 1
        if name == b"data":
            self._data_bytes += end - value_at + 1
            if self._data_bytes > self.max_bytes and not self._drop_event:
                self._drop_event = True
                self.oversized += 1
            if not self._drop_event:
                self._data.append(bytes(view[value_at:end]))
            return
        value = bytes(view[value_at:end])
        if name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self.last_event_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():
            self.retry_ms = int(value)

    def _dispatch(self, events: list[SseEvent]) -> None:
        if self._data and not self._drop_event:
            events.append(
                SseEvent(self._event or "message", b"\n".join(self._data), self.last_event_id)
            )
        self._event = ""
        self._data = []
        self._data_bytes = 0
        self._drop_event = False
