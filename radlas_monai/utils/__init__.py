"""Small utilities shared across the package (network bind checks)."""

from __future__ import annotations

from radlas_monai.utils.bind import RemoteBindError, check_bind_address, is_loopback_host

__all__ = ["RemoteBindError", "check_bind_address", "is_loopback_host"]
