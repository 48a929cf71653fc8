"""Where servers may listen: loopback by default, other interfaces only when asked for explicitly.

Every server the product starts (the MLflow UI launcher, the MONAI Label app) calls
:func:`check_bind_address` before it binds: a loopback address passes; any other address is refused
unless the caller passes ``allow_remote=True``, and even then a warning is logged when the server has
no authentication, since anyone who can reach the port can then read the radiographs and runs.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

__all__ = ["RemoteBindError", "is_loopback_host", "check_bind_address"]

logger = logging.getLogger(__name__)


class RemoteBindError(ValueError):
    """A server was asked to listen on a non-loopback address without ``allow_remote``."""


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` resolves only to loopback addresses (``127.0.0.0/8``, ``::1``, ``localhost``).

    Args:
        host: an IP address or host name; ``""``, ``0.0.0.0`` and ``::`` (all interfaces) are not loopback.

    Returns:
        True when every address ``host`` resolves to is a loopback address.
    """
    host = str(host).strip().strip("[]")
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def check_bind_address(host: str, *, service: str, allow_remote: bool = False, authenticated: bool = False) -> str:
    """Refuse, or warn about, a server bind address that is reachable from other machines.

    Args:
        host: the address the server will bind.
        service: the server's name, for the messages (e.g. ``"MLflow UI"``).
        allow_remote: the explicit opt-in to listen on a non-loopback address.
        authenticated: whether the server will require authentication; without it a remote bind
            is still allowed (when opted in) but logged as a warning.

    Returns:
        ``host``, unchanged.

    Raises:
        RemoteBindError: ``host`` is not a loopback address and ``allow_remote`` is False.
    """
    if is_loopback_host(host):
        return host
    if not allow_remote:
        raise RemoteBindError(
            f"{service}: refusing to listen on {host!r}, which other machines can reach; it serves radiographs and "
            f"results without authentication. Use 127.0.0.1 (the default), or opt in explicitly with "
            f"allow_remote=True behind a firewall or an authenticating reverse proxy."
        )
    if not authenticated:
        logger.warning(
            "%s listens on %r WITHOUT authentication: anyone who can reach this port can read its data. "
            "Put it behind a firewall or an authenticating reverse proxy.",
            service,
            host,
        )
    return host
