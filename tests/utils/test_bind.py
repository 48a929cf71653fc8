"""Bind-address policy: loopback passes, other interfaces need an explicit opt-in and warn without auth."""

from __future__ import annotations

import logging
import socket

import pytest

from radlas_monai.utils.bind import RemoteBindError, check_bind_address, is_loopback_host

#: the name resolution the host-name cases see, instead of the machine's (/etc/hosts, a DNS server that may be
#: missing or slow): name -> addresses; a name not listed does not resolve
FAKE_NAMES = {
    "localhost": ["127.0.0.1", "::1"],
    "loopback-only.test": ["127.0.1.1"],
    "scoped-loopback.test": ["::1%1"],
    "lan-host.test": ["192.168.1.10"],
    "mixed.test": ["127.0.0.1", "10.1.2.3"],
    "no-addresses.test": [],
}


@pytest.fixture()
def fake_resolver(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace ``socket.getaddrinfo`` by a lookup in :data:`FAKE_NAMES`; the list of names looked up."""
    looked_up: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        looked_up.append(host)
        if host not in FAKE_NAMES:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        infos = []
        for address in FAKE_NAMES[host]:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, port or 0, 0, 0) if family == socket.AF_INET6 else (address, port or 0)
            infos.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return infos

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


@pytest.mark.parametrize(
    "host, expected",
    [
        ("127.0.0.1", True),
        ("127.8.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.1.2.3", False),
    ],
)
def test_is_loopback_address(host: str, expected: bool, fake_resolver: list[str]) -> None:
    assert is_loopback_host(host) is expected
    assert not fake_resolver  # addresses are judged as they are, never looked up


@pytest.mark.parametrize(
    "host, expected",
    [
        ("localhost", True),
        ("loopback-only.test", True),
        ("scoped-loopback.test", True),
        ("lan-host.test", False),
        ("mixed.test", False),  # every address must be loopback
        ("no-addresses.test", False),
        ("no-such-host.invalid", False),  # does not resolve
    ],
)
def test_is_loopback_host_name(host: str, expected: bool, fake_resolver: list[str]) -> None:
    assert is_loopback_host(host) is expected
    assert fake_resolver == [host]


def test_remote_host_name_refused_without_opt_in(fake_resolver: list[str]) -> None:
    assert check_bind_address("localhost", service="X") == "localhost"
    with pytest.raises(RemoteBindError, match=r"refusing to listen on 'lan-host.test'"):
        check_bind_address("lan-host.test", service="X")


def test_loopback_passes_silently(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert check_bind_address("127.0.0.1", service="X") == "127.0.0.1"
    assert not caplog.records


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10"])
def test_remote_bind_refused_without_opt_in(host: str) -> None:
    with pytest.raises(RemoteBindError, match=rf"MLflow UI: refusing to listen on '{host}'.*allow_remote=True"):
        check_bind_address(host, service="MLflow UI")


def test_remote_bind_with_opt_in_warns_unless_authenticated(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="radlas_monai.utils.bind"):
        check_bind_address("0.0.0.0", service="S", allow_remote=True)
    assert "WITHOUT authentication" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="radlas_monai.utils.bind"):
        check_bind_address("0.0.0.0", service="S", allow_remote=True, authenticated=True)
    assert not caplog.records
