import asyncio
import threading

import pytest

from ledger.intake.bridge import settle


def test_a_batch_from_a_thread_settles_every_future_in_one_wake_up():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(5)]
        futures[2].cancel()  # its request went away: left alone
        scheduled = []
        original = loop.call_soon_threadsafe

        def counting(callback, *args):  # type: ignore[no-untyped-def]
            scheduled.append(callback)
            return original(callback, *args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        failure = ValueError("refused")
        batch = [(futures[0], "a", None), (futures[1], None, failure), (futures[2], "c", None), (futures[3], None, None)]
        thread = threading.Thread(target=settle, args=(batch,))
        thread.start()
        thread.join()
        assert await futures[0] == "a"
        with pytest.raises(ValueError, match="refused"):
            await futures[1]
        assert futures[2].cancelled()
        assert await futures[3] is None
        assert not futures[4].done()
        assert len(scheduled) == 1

    asyncio.run(main())


def test_futures_of_two_loops_are_each_settled_on_their_own():
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        one, two = first.create_future(), second.create_future()
        settle([(one, 1, None), (two, 2, None)])
        assert first.run_until_complete(one) == 1
        assert second.run_until_complete(two) == 2
    finally:
        first.close()
        second.close()


def test_a_closed_loop_gets_nothing_and_raises_nothing():
    loop = asyncio.new_event_loop()
    future = loop.create_future()
    loop.close()
    settle([(future, "late", None)])
    assert not future.done()
