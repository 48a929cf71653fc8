"""Bind-address policy: loopback passes, other interfaces need an explicit opt-in and warn without auth."""

from __future__ import annotations

import logging

import pytest

from radlas_monai.utils.bind import RemoteBindError, check_bind_address, is_loopback_host


@pytest.mark.parametrize(
    "host, expected",
    [
        ("127.0.0.1", True),
        ("127.8.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.1.2.3", False),
        ("no-such-host.invalid", False),
    ],
)
def test_is_loopback_host(host: str, expected: bool) -> None:
    assert is_loopback_host(host) is expected


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
