"""Fork safety of the shared limiter (issue #18, item 3), against a real redis-server.

Seen: after a forked child used the client, the parent's next limiter call failed with
``TimeoutError: Timeout reading``, logged a warning and paced in-process for 5 s: the
child's garbage-collected Redis client closed the socket through the epoll set both
processes share. Now a child drops what it inherited, untouched, and opens its own.
"""

from __future__ import annotations

import pytest

from stripe_sessions.testing import RedisServer
from tests.helpers import run_script

# The parent: a sync client (its loop and its Redis connection live on, in a thread,
# across every fork) paced by a shared limiter. Logs go to stderr; the number of
# EVALSHA calls Redis counted says which calls went through Redis.
PARENT = """
import logging, multiprocessing, gc, redis
logging.basicConfig(level=logging.WARNING, format="LOG %(message)s")
URL = "@URL@"
raw = redis.Redis.from_url(URL)

def evalsha_calls():
    stats = raw.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0))

with FakeStripe.running() as fake:
    limiter = ss.RedisRateLimiter(URL, rate=500, name="fork", redis_timeout=1.0)
    client = ss.Client(api_key=fake.api_key, base_url=fake.url, rate_limiter=limiter)

    def use(tag, n=3):
        for i in range(n):
            client.customer_sessions.create(customer=f"cus_{tag}_{i}", components=P)

    def in_child(tag):
        use(tag)
        gc.collect()  # whatever the child dropped is collected while its loop runs
        use(tag + "_again")
        return os.getpid()

    use("parent")
"""

FORK = """
    for round_ in range(3):
        pid = os.fork()
        if pid == 0:
            try:
                in_child(f"child{round_}")
                client.close()
                os._exit(0)
            except BaseException as e:
                print("child failed:", repr(e), file=sys.stderr)
                os._exit(4)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        before = evalsha_calls()
        use(f"parent{round_}")
        print("parent through redis:", evalsha_calls() - before)
    client.close()
    print("created", fake.created)
"""

POOL = """
    ctx = multiprocessing.get_context("fork")
    for round_ in range(2):
        with ctx.Pool(2) as pool:
            pids = pool.map(in_child, [f"w{round_}_{i}" for i in range(4)])
        before = evalsha_calls()
        use(f"parent{round_}")
        print("parent through redis:", evalsha_calls() - before)
    client.close()
    print("created", fake.created)
"""


@pytest.mark.parametrize(
    ("body", "created"),
    [(FORK, 3 + 3 * (6 + 3)), (POOL, 3 + 2 * (4 * 6 + 3))],
    ids=["os.fork", "multiprocessing-fork-pool"],
)
def test_the_parent_keeps_pacing_through_redis_while_children_come_and_go(
    redis_server: RedisServer, body: str, created: int
) -> None:
    out = run_script(
        (PARENT + body).replace("@URL@", redis_server.url),
        "-W",
        "ignore::DeprecationWarning",  # 3.12+: fork() of a process with threads
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    # Every call of the parent after each round went through Redis (3 EVALSHAs; the
    # children's calls are counted before), and nothing failed or fell back.
    assert [x for x in lines if x.startswith("parent")] == ["parent through redis: 3"] * (
        3 if body is FORK else 2
    ), out.stdout + out.stderr
    assert lines[-1] == f"created {created}"
    assert "failed" not in out.stderr and "Timeout" not in out.stderr, out.stderr
