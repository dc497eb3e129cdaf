"""Waiting for deadlines and running blocking calls off the event loop: every paced loop's helpers.

Kept free of heavy imports (no aiohttp, no Textual), so a command that only needs
pacing (the terminal viewer, the API loop, fleet recording) starts fast.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# Re-arm the timer this close to the deadline: a timer armed before a long write
# burst fires late by the burst's length, a short final wait does not.
_REARM_S = 0.02


def daemon_future(fn: Callable[..., T], *args: object) -> concurrent.futures.Future[T]:
    """Run `fn` on a fresh daemon thread, with or without an event loop yet (a viewer
    starts its first collection before its UI is up)."""
    fut: concurrent.futures.Future[T] = concurrent.futures.Future()

    def work() -> None:
        if not fut.set_running_or_notify_cancel():
            return
        try:
            result = fn(*args)
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(result)

    threading.Thread(target=work, name="smicast-collect", daemon=True).start()
    return fut


def in_daemon_thread(fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
    """Run `fn` on a fresh daemon thread: a collection in flight never delays shutdown.

    (Executor threads are joined at interpreter exit; the collector bounds each reader
    with a timeout, but exit should not wait for even that.)
    """
    return asyncio.wrap_future(daemon_future(fn, *args))


async def sleep_until(
    deadline: float,
    now: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    while (remaining := deadline - now()) > 0:
        await sleep(remaining - _REARM_S if remaining > 2 * _REARM_S else remaining)
