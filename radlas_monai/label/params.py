"""The allow-list of ``/infer`` request parameters: typed, range-checked, nothing else accepted.

MONAI Label copies the JSON ``params`` form field of ``POST /infer/{model}`` into the request dictionary
that reaches the infer task (and the stock ``BundleInferTask`` copies it into a bundle ``ConfigParser``,
where a ``"$..."`` string is evaluated). RadLAS infer tasks never hand request data to a config parser,
and every request is checked here first: unknown keys, ill-typed or out-of-range values, any string that
starts with ``$``, ``@`` or ``%`` (config expressions / references / macros) and any ``_target_``-like key
(``_target_``, ``_requires_``, ``_disabled_``, ``_desc_``, ``_mode_``) are rejected with
:class:`RequestParamError` (HTTP 422), so keys such as ``image``, ``model_filename``, ``device`` or
``logging`` can never be overridden through ``params``.

Accepted parameters (all optional):

=====================  ==============================  ============================================
``threshold``          float in [0, 1]                 ``method="fixed"``: cut on the min-max map
``percentile``         float in [0, 100]               ``method="percentile"``: cut at this percentile
``method``             ``otsu``/``fixed``/``percentile``  how the lesion map is thresholded
``min_area``           int in [1, 1_000_000]           smallest kept component (pixels, model grid)
``max_boxes``          int in [1, 100]                 at most this many boxes
``label``              ``mask``/``heatmap``            the image returned: binary mask or 8-bit map
``result_extension``   ``.png``/``.nii.gz``            file format of the returned image
=====================  ==============================  ============================================

Client bookkeeping keys that viewers and MONAI Label's own client send on their own are accepted only with
their documented plain types and ignored: ``label_info``, ``result_dtype``, ``result_compress``,
``restore_label_idx`` (3D Slicer, OHIF) and ``client_id`` (``monailabel.client.MONAILabelClient`` adds it to
every ``infer`` / ``next_sample`` / ``upload_image`` / ``save_label`` call: a string of at most
:data:`MAX_CLIENT_ID_CHARS` characters, or ``null`` when the client was made without one).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RequestParamError",
    "ParamSpec",
    "LESION_PARAMS",
    "CLASSIFICATION_PARAMS",
    "CLIENT_PARAMS",
    "MAX_CLIENT_ID_CHARS",
    "find_unsafe",
    "parse_params",
    "validate_params",
]

#: Prefixes that MONAI's ``ConfigParser`` treats specially: ``$`` expression, ``@`` reference, ``%`` macro.
UNSAFE_PREFIXES = ("$", "@", "%")
#: Keys with a special meaning in MONAI bundle configs.
UNSAFE_KEYS = ("_target_", "_requires_", "_disabled_", "_desc_", "_mode_")
MAX_PARAMS_CHARS = 16384
MAX_DEPTH = 4
#: Longest ``client_id`` accepted (MONAI Label's client sends the id it was made with, or ``null``).
MAX_CLIENT_ID_CHARS = 256


class RequestParamError(ValueError):
    """A request parameter that is not on the allow-list, or not of its declared type/range.

    Args:
        key: the offending parameter (``"params"`` for the field as a whole).
        reason: what is wrong with it, without echoing long values.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = str(key)[:64]
        self.reason = reason
        super().__init__(f"request parameter {self.key!r}: {reason}")

    def to_json(self) -> dict[str, str]:
        """The HTTP 422 body."""
        return {"error": "invalid_request_parameter", "parameter": self.key, "detail": str(self)}


@dataclass(frozen=True)
class ParamSpec:
    """One allowed parameter: a plain JSON type and its range or choices.

    Attributes:
        kind: ``"float"``, ``"int"``, ``"str"`` (one of ``choices``), ``"text"`` (any string of at most
            ``high`` characters), ``"bool"`` or ``"json"`` (plain nested lists/dicts).
        low, high: inclusive range of numbers; for ``"text"``, ``high`` is the longest length.
        choices: allowed strings.
        used: False for client bookkeeping keys that are checked and then dropped.
        nullable: ``null`` (``None``) is accepted as well.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    used: bool = True
    nullable: bool = False

    def check(self, key: str, value: Any) -> Any:
        """Return ``value`` converted to the declared type.

        Raises:
            RequestParamError: wrong type, out of range, not one of the choices.
        """
        if value is None and self.nullable:
            return None
        if self.kind in ("float", "int"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RequestParamError(key, f"must be a number, got {type(value).__name__}")
            if self.kind == "int" and not float(value).is_integer():
                raise RequestParamError(key, f"must be an integer, got {value!r}")
            number = int(value) if self.kind == "int" else float(value)
            if not math.isfinite(number) or not self.low <= number <= self.high:
                raise RequestParamError(key, f"must be in [{self.low}, {self.high}], got {value!r}")
            return number
        if self.kind == "str":
            if not isinstance(value, str) or value not in self.choices:
                raise RequestParamError(key, f"must be one of {list(self.choices)}, got {str(value)[:40]!r}")
            return value
        if self.kind == "text":
            if not isinstance(value, str):
                raise RequestParamError(
                    key, f"must be text{' or null' if self.nullable else ''}, got {type(value).__name__}"
                )
            if len(value) > self.high:
                raise RequestParamError(key, f"must be at most {int(self.high)} characters, got {len(value)}")
            if not value.isprintable():
                raise RequestParamError(key, "must be printable text (no control characters)")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise RequestParamError(key, f"must be true or false, got {type(value).__name__}")
            return value
        return value  # "json": plain structure, already screened by find_unsafe


_METHODS = ("otsu", "fixed", "percentile")
_BOOKKEEPING = {
    "label_info": ParamSpec("json", used=False),
    "result_dtype": ParamSpec("str", choices=("uint8", "uint16"), used=False),
    "result_compress": ParamSpec("bool", used=False),
    "restore_label_idx": ParamSpec("bool", used=False),
    "client_id": ParamSpec("text", high=MAX_CLIENT_ID_CHARS, used=False, nullable=True),
}
#: Parameters of ``radlas_lesion``.
LESION_PARAMS: dict[str, ParamSpec] = {
    "threshold": ParamSpec("float", 0.0, 1.0),
    "percentile": ParamSpec("float", 0.0, 100.0),
    "method": ParamSpec("str", choices=_METHODS),
    "min_area": ParamSpec("int", 1, 1_000_000),
    "max_boxes": ParamSpec("int", 1, 100),
    "label": ParamSpec("str", choices=("mask", "heatmap")),
    "result_extension": ParamSpec("str", choices=(".png", ".nii.gz")),
    **_BOOKKEEPING,
}
#: Parameters of ``radlas_classification`` (it returns JSON only).
CLASSIFICATION_PARAMS: dict[str, ParamSpec] = dict(_BOOKKEEPING)
#: Keys that the viewers and MONAI Label's client send on their own; accepted, checked and dropped.
CLIENT_PARAMS = tuple(_BOOKKEEPING)


def find_unsafe(value: Any, where: str = "params", depth: int = 0) -> str | None:
    """Locate the first config-parser-active content in a decoded JSON value.

    Args:
        value: decoded JSON.
        where: path of ``value`` (for the message).
        depth: current nesting depth.

    Returns:
        ``None`` when the value is plain data; otherwise a description such as
        ``"params.method starts with '$'"``.
    """
    if depth > MAX_DEPTH:
        return f"{where} is nested more than {MAX_DEPTH} levels"
    if isinstance(value, str):
        stripped = value.lstrip()
        for prefix in UNSAFE_PREFIXES:
            if stripped.startswith(prefix):
                return f"{where} starts with {prefix!r} (config expressions and references are not accepted)"
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if str(key).strip() in UNSAFE_KEYS or str(key).lstrip().startswith(UNSAFE_PREFIXES):
                return f"{where} has the key {str(key)[:40]!r} (config keys are not accepted)"
            found = find_unsafe(item, f"{where}.{str(key)[:40]}", depth + 1)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = find_unsafe(item, f"{where}[{index}]", depth + 1)
            if found:
                return found
    return None


def parse_params(text: str | bytes | None) -> dict[str, Any]:
    """Decode the ``params`` form field of ``/infer`` (JSON object text; empty means ``{}``).

    Raises:
        RequestParamError: not JSON, not an object, too long, or containing config-active content.
    """
    if text is None:
        return {}
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if len(text) > MAX_PARAMS_CHARS:
        raise RequestParamError("params", f"is longer than {MAX_PARAMS_CHARS} characters")
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as err:
        raise RequestParamError("params", f"is not valid JSON ({err.msg})") from None
    if not isinstance(value, dict):
        raise RequestParamError("params", f"must be a JSON object, got {type(value).__name__}")
    found = find_unsafe(value)
    if found:
        raise RequestParamError("params", found)
    return value


def validate_params(params: Mapping[str, Any], allowed: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """Check ``params`` against ``allowed`` and return the used ones, converted.

    Args:
        params: decoded request parameters.
        allowed: the task's allow-list (:data:`LESION_PARAMS` or :data:`CLASSIFICATION_PARAMS`).

    Returns:
        The accepted parameters that the task uses (bookkeeping keys dropped).

    Raises:
        RequestParamError: a key not on the list, a bad value, or config-active content.
    """
    found = find_unsafe(dict(params))
    if found:
        raise RequestParamError("params", found)
    out: dict[str, Any] = {}
    for key, value in params.items():
        spec = allowed.get(key)
        if spec is None:
            raise RequestParamError(key, f"is not accepted (allowed: {sorted(allowed)})")
        checked = spec.check(key, value)
        if spec.used:
            out[key] = checked
    return out
