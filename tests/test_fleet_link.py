"""Host states from the time passed in: live, stale after two intervals, errors redacted."""

from __future__ import annotations

from smicast.fleet.hosts import parse_host
from smicast.fleet.link import HostLink, HostState


def test_interval_is_learnt_and_silence_turns_stale() -> None:
    link = HostLink(parse_host("n:1"))
    assert link.state_at(0.0) is HostState.CONNECTING
    for t in (10.0, 11.0, 12.0, 13.5):  # one late frame does not stretch the interval
        link.frame(t)
    assert link.interval_s == 1.0
    assert link.state_at(15.4) is HostState.LIVE
    assert link.state_at(15.6) is HostState.STALE


def test_a_connection_without_frames_turns_stale() -> None:
    link = HostLink(parse_host("n:1"))
    link.opened(100.0)
    assert link.state_at(105.0) is HostState.CONNECTING
    assert link.state_at(106.1) is HostState.STALE


def test_polled_interval_and_failures() -> None:
    link = HostLink(parse_host("n:1"))
    link.frame(0.0, polled_every_s=5.0)
    assert link.state_at(9.9) is HostState.LIVE and link.state_at(10.1) is HostState.STALE
    link.fail("GET http://ops:secret@n:1/events: Authorization: Bearer tok3n", HostState.OFFLINE)
    assert link.state_at(10.0) is HostState.OFFLINE
    assert "secret" not in (link.error or "") and "tok3n" not in (link.error or "")
    link.frame(11.0)
    assert link.error is None and link.state is HostState.LIVE
