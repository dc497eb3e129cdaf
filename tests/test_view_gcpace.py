"""The viewer's garbage-collection pacing: frozen at the first frame, young generations on
a clock, everything less often, a high threshold only as a backstop."""

from __future__ import annotations

import asyncio
import gc

from smicast.view.gcpace import SAFETY_THRESHOLD, GcPacer


class FakeGc:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.threshold = (700, 10, 10)

    def freeze(self) -> None:
        self.calls.append("freeze")

    def collect(self, generation: int = 2) -> int:
        self.calls.append(f"collect{generation}")
        return 0

    def get_threshold(self) -> tuple[int, int, int]:
        return self.threshold

    def set_threshold(self, threshold0: int, threshold1: int = 10, threshold2: int = 10) -> None:
        self.threshold = (threshold0, threshold1, threshold2)


def test_the_pacer_freezes_once_then_collects_young_often_and_everything_rarely() -> None:
    fake = FakeGc()
    now = [100.0]

    async def main() -> GcPacer:
        pacer = GcPacer(young_every_s=0.01, full_every_s=3.0, collector=fake, clock=lambda: now[0])
        pacer.start()
        pacer.start()  # a second first frame (a fleet's next host) changes nothing
        for _ in range(7):
            await asyncio.sleep(0.03)  # at least one tick each
            now[0] += 1.0
        pacer.stop()
        return pacer

    pacer = asyncio.run(main())
    assert fake.calls[0] == "freeze" and fake.calls.count("freeze") == 1
    assert fake.threshold == (SAFETY_THRESHOLD, 10, 10)  # the older generations keep theirs
    collected = fake.calls[1:]
    assert collected and set(collected) == {"collect1", "collect2"}
    # everything once every 3 s of the clock: 7 s passed, so two or three full collections
    assert 2 <= collected.count("collect2") <= 3
    assert pacer.collections[1] == collected.count("collect1")
    stopped = len(fake.calls)

    async def later() -> None:
        await asyncio.sleep(0.05)

    asyncio.run(later())
    assert len(fake.calls) == stopped  # stop() ended the ticks


def test_the_real_gc_module_fits_the_pacer() -> None:
    before = gc.get_threshold()
    try:

        async def main() -> None:
            pacer = GcPacer(young_every_s=0.01, full_every_s=0.02)
            pacer.start()
            await asyncio.sleep(0.1)
            pacer.stop()
            assert pacer.collections[1] + pacer.collections[2] >= 2
            assert gc.get_threshold()[0] == SAFETY_THRESHOLD and gc.get_freeze_count() > 0

        asyncio.run(main())
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
