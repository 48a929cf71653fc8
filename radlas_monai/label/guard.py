"""ASGI request guard in front of MONAI Label's FastAPI app: routes, upload size, ``/infer`` parameters.

MONAI Label 0.8.5 has no upload size limit, copies the ``params`` form field into the infer request
unchecked, lets a request choose a model file or a local path, and serves training, model upload, DICOMweb
proxy and log endpoints. :class:`RequestGuard` answers before any of that runs:

- only the read endpoints a viewer needs are routed (``/info``, ``/infer/{model}``, ``/datastore`` reads,
  ``/activelearning`` for "next sample", the API docs, static files); anything else gets 404 JSON;
- a request body larger than ``max_body_bytes`` gets 413 (declared ``Content-Length`` or counted while
  streaming). So that an ordinary client (``requests``, ``urllib``, a browser) that sends its whole body before
  reading reliably reads the 413 instead of a broken pipe, the rest of a refused body is read and discarded first,
  up to ``max_drain_bytes`` more bytes and ``drain_timeout`` seconds; a client that sent
  ``Expect: 100-continue`` (curl does above 1 MB) gets the 413 at once and never sends the body; a body declared
  larger than the drain budget is answered at once and the connection closed, so such a client may see a reset;
- ``POST /infer/{model}``: the model must be served (404 ``unknown_model``, or ``model_not_served`` for a RadLAS
  model whose weights were not found at startup), the query may hold only ``image`` (a datastore
  image id; with an uploaded ``file`` it is ignored by MONAI Label, so only its form is checked), ``output``
  (``image``/``json``/``all``) and an empty ``session_id``, the form only ``params`` and one ``file``;
  ``params`` must pass the model's allow-list (:mod:`radlas_monai.label.params`), else 422.

Every refusal is a JSON body ``{"error": <code>, "detail": <message>}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import parse_qsl

from radlas_monai.label.params import ParamSpec, RequestParamError, parse_params, validate_params

__all__ = [
    "RequestGuard",
    "json_response_bytes",
    "IMAGE_ID_PATTERN",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_DRAIN_BYTES",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 128 << 20
DEFAULT_MAX_DRAIN_BYTES = 64 << 20
DEFAULT_DRAIN_TIMEOUT = 10.0
IMAGE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_READ_PREFIXES = ("/info", "/datastore", "/static", "/ohif")
_READ_EXACT = ("/", "/docs", "/openapi.json", "/favicon.ico")
_INFER_QUERY = {"image", "output", "session_id"}
_OUTPUTS = {"image", "json", "all"}


def json_response_bytes(status: int, error: str, detail: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of a JSON error answer."""
    body = json.dumps({"error": error, "detail": detail}).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return headers, body


class _Refused(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


class RequestGuard:
    """Wrap an ASGI app (MONAI Label's) with route, size and parameter checks.

    Args:
        app: the ASGI app guarded.
        allowed_params: ``{model name: allow-list}`` of every model that may be served.
        max_body_bytes: largest request body (uploads included) accepted.
        served_models: ``() -> names`` of the models actually served now (checkpoints present).
        image_ids: ``() -> ids`` of the datastore's images.
        max_drain_bytes: most bytes of a refused (413) body read and discarded before answering (0: answer at
            once); a body declared larger than ``max_body_bytes + max_drain_bytes`` is not drained.
        drain_timeout: most seconds spent draining one refused body.
    """

    def __init__(
        self,
        app: Callable,
        allowed_params: Mapping[str, Mapping[str, ParamSpec]],
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        served_models: Callable[[], Iterable[str]] | None = None,
        image_ids: Callable[[], Iterable[str]] | None = None,
        max_drain_bytes: int = DEFAULT_MAX_DRAIN_BYTES,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    ) -> None:
        if max_body_bytes <= 0 or max_drain_bytes < 0 or drain_timeout < 0:
            raise ValueError(
                f"need max_body_bytes > 0, max_drain_bytes >= 0, drain_timeout >= 0; got max_body_bytes="
                f"{max_body_bytes}, max_drain_bytes={max_drain_bytes}, drain_timeout={drain_timeout}"
            )
        self.max_drain_bytes = int(max_drain_bytes)
        self.drain_timeout = float(drain_timeout)
        self.app = app
        self.allowed_params = {k: dict(v) for k, v in allowed_params.items()}
        self.max_body_bytes = int(max_body_bytes)
        self.served_models = served_models or (lambda: self.allowed_params)
        self.image_ids = image_ids

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        client_receive = receive

        async def tracked_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            self._check_route(scope["method"], scope["path"])
            self._check_declared_size(scope)
            if scope["method"] == "POST" and scope["path"].startswith("/infer"):
                body = await self._read_body(receive)
                await self._check_infer(scope, body)
                receive = self._replay(body, receive)
            else:
                receive = self._counting(receive)
            await self.app(scope, receive, tracked_send)
        except _Refused as refused:
            logger.info("refused %s %s: %s", scope["method"], scope["path"], refused.detail)
            if started:  # refused while the app was streaming its answer: nothing more can be sent
                return
            if refused.status == 413:
                await self._drain(scope, client_receive)
            headers, body = json_response_bytes(refused.status, refused.error, refused.detail)
            await send({"type": "http.response.start", "status": refused.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _check_route(method: str, path: str) -> None:
        if method in ("GET", "HEAD"):
            if path in _READ_EXACT or path.startswith(_READ_PREFIXES):
                return
        elif method == "POST" and (path.startswith("/infer/") or path.startswith("/activelearning/")):
            return
        elif method == "OPTIONS":  # CORS preflight, answered by the CORS middleware
            return
        raise _Refused(404, "endpoint_disabled", f"{method} {path} is not served by the RadLAS MONAI Label server")

    def _check_declared_size(self, scope: dict) -> None:
        for key, value in scope.get("headers", []):
            if key.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise _Refused(400, "bad_request", "Content-Length is not a number") from None
                if declared > self.max_body_bytes:
                    raise _Refused(413, "upload_too_large", self._too_large(declared))

    async def _drain(self, scope: dict, receive: Callable) -> None:
        """Read and discard the rest of a refused body (bounded), so the client is not cut off mid-send."""
        headers = {key.lower(): value for key, value in scope.get("headers", [])}
        if headers.get(b"expect", b"").lower() == b"100-continue" or self.max_drain_bytes == 0:
            return  # the client waits for our answer before sending: do not invite the body
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes + self.max_drain_bytes:
            return

        async def discard() -> None:
            drained = 0
            while drained <= self.max_drain_bytes:
                message = await receive()
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return

        try:
            await asyncio.wait_for(discard(), self.drain_timeout)
        except asyncio.TimeoutError:
            logger.info("stopped draining a refused body after %.0f s", self.drain_timeout)

    def _too_large(self, size: int | None = None) -> str:
        got = f" ({size} bytes)" if size is not None else ""
        return f"request body{got} exceeds the limit of {self.max_body_bytes} bytes"

    async def _read_body(self, receive: Callable) -> bytes:
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Refused(400, "bad_request", "client disconnected")
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_body_bytes:
                raise _Refused(413, "upload_too_large", self._too_large())
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _counting(self, receive: Callable) -> Callable:
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body_bytes:
                raise _Refused(413, "upload_too_large", self._too_large())
            return message

        return counted

    @staticmethod
    def _replay(body: bytes, receive: Callable) -> Callable:
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _check_infer(self, scope: dict, body: bytes) -> None:
        model = scope["path"][len("/infer/") :].strip("/")
        if model not in set(self.served_models()):
            if model in self.allowed_params:  # a RadLAS model whose weights were not found at startup
                raise _Refused(
                    404,
                    "model_not_served",
                    f"model {model!r} is not served: no weights were found when the server started (its startup "
                    "output lists the files it looked for); GET /info/ lists the models served",
                )
            raise _Refused(404, "unknown_model", f"model {model[:60]!r} is not served; GET /info/ lists the models")
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        for key, value in query:
            if key not in _INFER_QUERY:
                raise _Refused(422, "invalid_request_parameter", f"query parameter {key[:40]!r} is not accepted")
            if key == "session_id" and value:
                raise _Refused(422, "invalid_request_parameter", "sessions are disabled; upload the file instead")
            if key == "output" and value not in _OUTPUTS:
                raise _Refused(422, "invalid_request_parameter", f"output must be one of {sorted(_OUTPUTS)}")
        image = dict(query).get("image", "")
        params, has_file = await self._read_form(scope, body)
        if image:
            self._check_image_id(image, in_datastore=not has_file)
        elif not has_file:
            raise _Refused(422, "missing_image", "upload a file (form field 'file') or give a datastore image id")
        try:
            validate_params(parse_params(params), self.allowed_params[model])
        except RequestParamError as err:
            raise _Refused(422, "invalid_request_parameter", str(err)) from None

    def _check_image_id(self, image: str, in_datastore: bool = True) -> None:
        """``image`` must look like an id; without an upload it must also name a datastore image.

        With an upload MONAI Label infers on the uploaded file and ignores ``image`` (``MONAILabelClient.infer``
        always sends one, often the file's name), so only its form is checked then.
        """
        if not IMAGE_ID_PATTERN.match(image):
            raise _Refused(422, "invalid_image_id", "image must be a datastore image id (GET /datastore/?output=all)")
        if in_datastore and self.image_ids is not None and image not in set(self.image_ids()):
            raise _Refused(404, "unknown_image", f"image {image!r} is not in the datastore")

    async def _read_form(self, scope: dict, body: bytes) -> tuple[str | None, bool]:
        from starlette.requests import Request

        async def once() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        content_type = dict(scope.get("headers", [])).get(b"content-type", b"").decode("latin-1")
        if not body:
            return None, False
        if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            raise _Refused(422, "bad_request", "the infer request must be a multipart form (fields 'params', 'file')")
        try:
            form = await Request(scope, once).form(max_files=1, max_fields=4)
        except Exception as err:  # malformed multipart of any kind
            raise _Refused(400, "bad_request", f"malformed form data ({type(err).__name__})") from None
        try:
            for key in form.keys():
                if key not in ("params", "file"):
                    raise _Refused(422, "invalid_request_parameter", f"form field {key[:40]!r} is not accepted")
            params = form.get("params")
            upload = form.get("file")
            if params is not None and not isinstance(params, str):
                raise _Refused(422, "invalid_request_parameter", "'params' must be a text field holding JSON")
            if upload is not None and isinstance(upload, str):
                raise _Refused(422, "bad_request", "'file' must be a file upload")
            return params, upload is not None
        finally:
            await form.close()
