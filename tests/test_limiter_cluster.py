"""One budget through a real Redis Cluster (issue #18, item 6).

Seen: the script touched several keys without a shared hash tag (CROSSSLOT on a
cluster), and there was no way to hand the limiter a cluster. Now every key of one
budget is in the hash tag ``{name}`` and ``cluster=True`` uses redis-py's RedisCluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.cluster import key_slot

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe, RedisCluster

WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    import stripe_sessions as ss

    url, cluster_url, name, count = sys.argv[1:5]

    async def main():
        limiter = ss.RedisRateLimiter(cluster_url, rate=25, name="cluster-test",
                                      batch_share=1.0, cluster=True, redis_timeout=2.0)
        async with ss.AsyncClient(api_key="sk_test_123", base_url=url,
                                  rate_limiter=limiter) as client:
            results = await client.customer_sessions.create_many(
                ({"customer": f"cus_{name}_{i}", "components": {"buy_button": {"enabled": True}}}
                 for i in range(int(count))),
                concurrency=8, rate_limit=None, batch_key=name)
        await limiter.aclose()
        print(json.dumps({"ok": sum(r.ok for r in results), "fallback": limiter._warned}))

    asyncio.run(main())
    """
)


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisCluster]:
    """A three-node Redis Cluster. Skipped without redis-cli or redis-server, except in CI."""
    try:
        cluster = RedisCluster()
    except FileNotFoundError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{e} is not installed: the Redis Cluster test needs it in CI")
        pytest.skip(f"no {e} binary: the Redis Cluster test needs redis-server and redis-cli")
    with cluster:
        yield cluster


@given(name=st.text(min_size=1, max_size=200).filter(lambda n: n.isprintable()))
def test_every_key_of_a_budget_is_in_one_cluster_slot(name: str) -> None:
    try:
        limiter = ss.RedisRateLimiter("redis://127.0.0.1:7000/0", rate=25, name=name, cluster=True)
    except ss.ValidationError as e:
        assert e.param == "name" and ("{" in name or "}" in name)
        return
    slots = {key_slot(k.encode()) for k in limiter._keys}
    assert len(slots) == 1


def test_four_processes_share_one_budget_through_a_redis_cluster(
    redis_cluster: RedisCluster,
) -> None:
    # 4 x 15 items at a shared 25/s against a fake that answers 429 above 25/s: about
    # 2.4 s of pacing, no 429, every item created once.
    with FakeStripe.running(rate_limit=25) as fake:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, fake.url, redis_cluster.url, f"p{i}", "15"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(4)
        ]
        outs = [p.communicate(timeout=120) for p in procs]
        for p, (_, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err
        results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
        assert results == [{"ok": 15, "fallback": False}] * 4, [err for _, err in outs]
        assert not [r for r in fake.requests if r.status == 429]
        assert fake.created == 60
        assert len(set(fake.session_keys)) == 60  # every item created exactly once
        assert not any("failed" in err for _, err in outs), [err[-3000:] for _, err in outs]
