"""The test servers' ports: a server is the one it says it is, a refused port stays refused.

A port found free and then released can be taken by another worker before it is used:
a RedisServer would then hand out the URL of another test's Redis, and a test of an
unreachable server would reach one.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stripe_sessions.testing import RedisServer
from stripe_sessions.testing._redis import _process_id
from tests.helpers import free_port


@pytest.fixture
def other(redis_server: RedisServer) -> Iterator[RedisServer]:
    yield redis_server


def test_a_port_taken_by_another_redis_before_start_is_not_used(
    other: RedisServer, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path)
    server.port, server.url = other.port, other.url  # taken meanwhile by another server
    try:
        server.start()
        assert server.port != other.port
        assert server.proc is not None and _process_id(server.port) == server.proc.pid
        mine, theirs = redis.Redis.from_url(server.url), redis.Redis.from_url(other.url)
        try:
            assert mine.set("mine", 1) and theirs.get("mine") is None
        finally:
            mine.close()
            theirs.close()
    finally:
        server.stop()


def test_a_port_taken_by_a_listener_before_start_is_not_used(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", server.port))
        taken.listen()
        try:
            server.start()
            assert server.port != taken.getsockname()[1]
            assert server.proc is not None and _process_id(server.port) == server.proc.pid
        finally:
            server.stop()


def test_a_restart_keeps_its_port_or_says_it_cannot(other: RedisServer, tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    port = server.port
    server.stop()
    server.start()  # again on the same port
    assert server.port == port and server.proc is not None
    assert _process_id(port) == server.proc.pid
    server.stop()
    server.port = other.port  # as if taken while it was down
    with pytest.raises(RuntimeError, match=f"port {other.port}"):
        server.start()
    assert server.proc is None


def test_free_port_stays_refused() -> None:
    port = free_port()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with socket.socket() as s, pytest.raises(OSError):  # nobody else can take it
        s.bind(("127.0.0.1", port))
