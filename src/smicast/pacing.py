"""Waiting for deadlines and running blocking calls off the event loop: every paced loop's helpers.

Kept free of heavy imports (no aiohttp, no Textual), so a command that only needs
pacing (the terminal viewer, the API loop, fleet recording) starts fast.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# Re-arm the timer this close to the deadline: a timer armed before a long write
# burst fires late by the burst's length, a short final wait does not.
_REARM_S = 0.02


def in_daemon_thread(fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
    """Run `fn` on a fresh daemon thread: a collection in flight never delays shutdown.

    (Executor threads are joined at interpreter exit; the collector bounds each reader
    with a timeout, but exit should not wait for even that.)
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, exc: BaseException | None) -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=work, name="smicast-collect", daemon=True).start()
    return fut


async def sleep_until(
    deadline: float,
    now: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    while (remaining := deadline - now()) > 0:
        await sleep(remaining - _REARM_S if remaining > 2 * _REARM_S else remaining)
