"""The test network guard: loopback works, anything else is refused and fails the test even when swallowed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.netguard import NetworkBlocked, take_attempts

ROOT = Path(__file__).resolve().parents[3]


def test_non_loopback_connect_and_dns_are_blocked() -> None:
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("192.0.2.1", 443), timeout=0.2)  # TEST-NET-1: never routed anyway
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("api.telegram.org", 443)
    with pytest.raises(NetworkBlocked):
        socket.socket(socket.AF_INET6).connect_ex(("2001:db8::1", 443, 0, 0))
    assert take_attempts() == ["192.0.2.1:443", "DNS api.telegram.org", "2001:db8::1:443"]  # consumed: test passes


def test_loopback_and_unix_sockets_are_allowed(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    with socket.create_connection(server.getsockname(), timeout=1):
        pass
    server.close()
    assert socket.getaddrinfo("localhost", 80)
    path = str(tmp_path / "s.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(path)
    unix.listen()
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(path)
    unix.close()


def test_a_swallowed_attempt_still_fails_the_test(tmp_path: Path) -> None:
    """Run a small suite with the plugin: retry loops and PTB swallow connection errors, the guard does not."""
    (tmp_path / "test_inner.py").write_text(textwrap.dedent("""
        import asyncio, socket
        from bot.platforms.telegram.channel import TelegramChannel
        from handlers.chat import Outgoing, RetryableSendError

        def test_swallowed():
            try:
                socket.create_connection(("192.0.2.1", 443), timeout=0.2)
            except OSError:
                pass

        def test_real_telegram_default_url():
            async def main():
                ch = TelegramChannel("1:abcdefghijkl", connect_timeout=0.5, read_timeout=0.5)
                try:
                    await ch.send(Outgoing(chat_id="1", text="hi"))
                except RetryableSendError:
                    pass  # PTB turned the refusal into a NetworkError; we into a retryable error
                finally:
                    await ch.close()
            asyncio.run(main())

        def test_local_only():
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.close()
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.netguard", "-p", "no:cacheprovider", "-q", "-c", os.devnull,
         "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    out = result.stdout + result.stderr
    assert "2 failed, 1 passed" in out, out
    assert "netguard: the test tried to reach the network: 192.0.2.1:443" in out
    assert "DNS api.telegram.org" in out


def test_ci_backend_hosts_are_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI may run PostgreSQL/Redis as services on other hosts; those (and only those) stay reachable."""
    from tests import netguard

    monkeypatch.delenv("ORDERHUB_TEST_REDIS_URL", raising=False)
    monkeypatch.setenv("ORDERHUB_TEST_DATABASE_URL", "postgresql://ci@pg-service:5432/orderhub")
    monkeypatch.setenv("NETGUARD_ALLOW", "10.1.2.3, Redis-Box")
    assert netguard._configured_hosts() == {"pg-service", "10.1.2.3", "redis-box"}
    monkeypatch.setattr(netguard, "_allowed", {"pg-service", "10.1.2.3"})
    assert netguard._is_local_host("pg-service") and netguard._is_local_host("10.1.2.3")
    assert not netguard._is_local_host("api.telegram.org") and not netguard._is_local_host("10.1.2.4")
