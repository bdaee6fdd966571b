"""Test-only network guard (a pytest plugin): any connection to a non-loopback address fails the test.

Enable for the whole suite with `pytest_plugins = ["tests.netguard"]` in the root `tests/conftest.py` (or
`-p tests.netguard` in addopts). It patches `socket.socket.connect`/`connect_ex` (which asyncio, httpx and redis-py
all end up in) and `socket.getaddrinfo` (so even a DNS lookup of api.telegram.org counts). A blocked attempt raises
`NetworkBlocked` *and* is recorded; the test fails afterwards even if the code under test swallowed the exception
(retry loops do). Unix sockets and 127.0.0.0/8, ::1, localhost are allowed, and so are the hosts of the test
backends CI may point at (ORDERHUB_TEST_DATABASE_URL, ORDERHUB_TEST_REDIS_URL) and any in NETGUARD_ALLOW
(comma-separated host names or IPs), with the addresses they resolve to.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import Generator
from typing import Any
from urllib.parse import urlsplit

import pytest

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
_allowed: set[str] = set()  # extra host names and IPs (test backends), filled by install()
_attempts: list[str] = []
_lock = threading.Lock()
_originals: dict[str, Any] = {}


class NetworkBlocked(ConnectionRefusedError):
    """A test tried to reach beyond this machine. A ConnectionError, so clients fail the way they would offline."""


def _is_local_host(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).strip("[]").split("%", 1)[0]
    if host.lower() in _LOCAL_NAMES or host.lower() in _allowed:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name other than localhost: resolving it is already network traffic
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _is_ip(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    try:
        ipaddress.ip_address(str(host).strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _block(what: str) -> None:
    with _lock:
        _attempts.append(what)
    raise NetworkBlocked(f"netguard: tests may not reach {what}")


def _check_address(sock: socket.socket, address: Any) -> None:
    inet = sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple)
    if inet and not _is_local_host(address[0]):
        _block(f"{address[0]}:{address[1]}")


def _configured_hosts() -> set[str]:
    hosts = {h.strip().lower() for h in os.environ.get("NETGUARD_ALLOW", "").split(",") if h.strip()}
    for var in ("ORDERHUB_TEST_DATABASE_URL", "ORDERHUB_TEST_REDIS_URL"):
        url = os.environ.get(var)
        if url and urlsplit(url).hostname:
            hosts.add(str(urlsplit(url).hostname).lower())
    return hosts


def install() -> None:
    """Idempotent; called from pytest_configure."""
    if _originals:
        return
    _allowed.update(_configured_hosts())
    _originals.update(connect=socket.socket.connect, connect_ex=socket.socket.connect_ex,
                      getaddrinfo=socket.getaddrinfo)

    def connect(self: socket.socket, address: Any) -> None:
        _check_address(self, address)
        return _originals["connect"](self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check_address(self, address)
        return _originals["connect_ex"](self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode(errors="replace") if isinstance(host, bytes) else host
        # An IP literal resolves without traffic (connect() judges it); a name other than localhost is a DNS query.
        if name is not None and not _is_local_host(name) and not _is_ip(name):
            _block(f"DNS {name}")
        result = _originals["getaddrinfo"](host, *args, **kwargs)
        if name is not None and str(name).lower() in _allowed:  # an allowed backend: its addresses are too
            _allowed.update(str(info[4][0]).lower() for info in result)
        return result

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo


def uninstall() -> None:
    if not _originals:
        return
    socket.socket.connect = _originals["connect"]  # type: ignore[method-assign]
    socket.socket.connect_ex = _originals["connect_ex"]  # type: ignore[method-assign]
    socket.getaddrinfo = _originals["getaddrinfo"]
    _originals.clear()


def take_attempts() -> list[str]:
    """The blocked attempts recorded so far, clearing them (a test of the guard itself uses this)."""
    with _lock:
        out = list(_attempts)
        _attempts.clear()
        return out


def pytest_configure(config: pytest.Config) -> None:
    install()


def pytest_unconfigure(config: pytest.Config) -> None:
    uninstall()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    take_attempts()
    result = yield
    blocked = take_attempts()
    if blocked:
        pytest.fail(f"netguard: the test tried to reach the network: {', '.join(sorted(set(blocked)))}",
                    pytrace=False)
    return result
