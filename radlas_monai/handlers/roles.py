"""Which role an engine plays for a handler attached to several engines: trainer or evaluator."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["engine_role"]


def engine_role(engine: Any, role: str | None = None) -> str:
    """``role`` if given, else ``"evaluator"`` for a MONAI ``Evaluator`` and ``"trainer"`` otherwise.

    MONAI's engines are never imported just for this check: if ``monai.engines`` is not loaded,
    ``engine`` cannot be one of its evaluators.

    Args:
        engine: an ignite/MONAI engine.
        role: an explicit role, validated.

    Returns:
        ``"trainer"`` or ``"evaluator"``.

    Raises:
        ValueError: ``role`` is neither ``None``, ``"trainer"`` nor ``"evaluator"``.
    """
    if role is not None:
        if role not in ("trainer", "evaluator"):
            raise ValueError(f"role must be 'trainer', 'evaluator' or None, got {role!r}")
        return role
    evaluator_cls = getattr(sys.modules.get("monai.engines.evaluator"), "Evaluator", None)
    return "evaluator" if evaluator_cls is not None and isinstance(engine, evaluator_cls) else "trainer"
