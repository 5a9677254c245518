"""One of several processes charging the same limit at once (see test_limits).

    python -m tests.helpers.limit_hitter BACKEND URL PREFIX KEY LIMIT WINDOW_S HITS

Connects, prints "ready" and waits for a line on stdin (so that every process hits at
once), then makes HITS concurrent `hit_all` calls and prints how many were allowed.
"""

from __future__ import annotations

import asyncio
import sys

from otp.risk.limits import Hit, Limit, Limiter


async def main(argv: list[str]) -> int:
    backend, url, prefix, key, limit, window_s, hits = argv
    limiter: Limiter
    store = None
    if backend == "redis":
        from otp.risk.limits.redis import RedisLimiter

        limiter = RedisLimiter(url, prefix=prefix)
    else:
        from otp.risk.limits.store import StoreLimiter
        from otp.store import Store

        store = Store(url)
        limiter = StoreLimiter(store)
    hit = Hit(key, Limit("test", int(limit), int(window_s)))
    try:
        await limiter.peek([hit])  # connect before the start
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await asyncio.to_thread(sys.stdin.readline)
        results = await asyncio.gather(*(limiter.hit_all([hit]) for _ in range(int(hits))))
    finally:
        await limiter.close()
        if store is not None:
            await store.close()
    return sum(1 for decisions in results if decisions[0].allowed)


if __name__ == "__main__":
    sys.stdout.write(f"{asyncio.run(main(sys.argv[1:]))}\n")
