"""Run FakeStripe in its own process for the benchmarks; prints the port, serves until killed."""

from __future__ import annotations

import asyncio
import sys

from stripe_sessions.testing import FakeStripe


async def main() -> None:
    fake = FakeStripe(record=False)
    await fake.start()
    print(fake.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
