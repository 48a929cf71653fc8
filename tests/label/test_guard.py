"""Tests for radlas_monai.label.guard.RequestGuard without a server: what a refused (413) upload does to the stream."""

from __future__ import annotations

import asyncio
import json

import pytest

from radlas_monai.label.guard import RequestGuard

LIMIT = 100


async def _never_called(scope, receive, send):  # the guard must answer before the app runs
    raise AssertionError("the guarded app ran")


def _run(headers: list[tuple[bytes, bytes]], chunks: list[bytes], **guard_kwargs) -> tuple[list[dict], int]:
    """Send a POST /infer request in ``chunks``; return what the guard sent and how many chunks it read."""
    guard = RequestGuard(_never_called, {"radlas_lesion": {}}, max_body_bytes=LIMIT, **guard_kwargs)
    scope = {"type": "http", "method": "POST", "path": "/infer/radlas_lesion", "headers": headers, "query_string": b""}
    read, sent = 0, []

    async def receive() -> dict:
        nonlocal read
        if read == len(chunks):
            return {"type": "http.disconnect"}
        read += 1
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    return sent, read


@pytest.mark.parametrize("declared", [True, False], ids=["declared-length", "streamed"])
def test_refused_body_is_drained_before_the_413(declared):
    chunks = [b"x" * 60] * 5  # 300 bytes against a limit of 100
    headers = [(b"content-length", b"300")] if declared else []
    sent, read = _run(headers, chunks)
    assert sent[0]["status"] == 413 and json.loads(sent[1]["body"])["error"] == "upload_too_large"
    assert read == len(chunks)  # the client finished sending before it was answered: no broken pipe


@pytest.mark.parametrize(
    "headers, kwargs",
    [
        [[(b"content-length", b"300"), (b"expect", b"100-continue")], {}],  # the client waits for our answer
        [[(b"content-length", b"300")], {"max_drain_bytes": 0}],
        [[(b"content-length", b"100000")], {"max_drain_bytes": 1000}],  # beyond the drain budget
    ],
    ids=["expect-100-continue", "draining-off", "beyond-budget"],
)
def test_refused_body_is_not_invited_or_drained_without_bound(headers, kwargs):
    sent, read = _run(headers, [b"x" * 60] * 5, **kwargs)
    assert sent[0]["status"] == 413 and read == 0


def test_bad_drain_arguments_raise():
    with pytest.raises(ValueError, match="max_drain_bytes"):
        RequestGuard(_never_called, {}, max_drain_bytes=-1)


def _infer(query: bytes, upload: bool) -> tuple[int, dict | None]:
    """POST /infer/radlas_lesion with ``query`` (and a file when ``upload``) through a guard whose datastore holds
    ``known``; returns the status and the refusal body, or 200 and None when the request reached the app."""
    from label_server import multipart

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    body, content_type = multipart({"params": "{}"}, {"file": ("chest.png", b"png bytes")} if upload else {})
    guard = RequestGuard(app, {"radlas_lesion": {}}, image_ids=lambda: ["known"])
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "method": "POST", "path": "/infer/radlas_lesion", "headers": headers}
    sent = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(guard({**scope, "query_string": query}, receive, send))
    status = sent[0]["status"]
    return status, (json.loads(sent[1]["body"]) if status != 200 else None)


@pytest.mark.parametrize(
    "query, upload, status, error",
    [
        [b"image=known", False, 200, None],
        [b"image=chest", False, 404, "unknown_image"],
        [
            b"image=chest",
            True,
            200,
            None,
        ],  # MONAILabelClient.infer sends an id with every upload; MONAI Label ignores it
        [b"image=", True, 200, None],
        [b"image=..%2Fetc%2Fpasswd", True, 422, "invalid_image_id"],  # still only an id, never a path
        [b"", False, 422, "missing_image"],
    ],
)
def test_image_id_must_be_in_the_datastore_unless_a_file_is_uploaded(query, upload, status, error):
    got, body = _infer(query, upload)
    assert got == status and (body is None or body["error"] == error)


@pytest.mark.parametrize(
    "model, error",
    [["radlas_lesion", "model_not_served"], ["deepedit", "unknown_model"]],
    ids=["no-weights", "unknown"],
)
def test_a_model_without_weights_is_named_as_such(model, error):
    guard = RequestGuard(_never_called, {"radlas_lesion": {}}, served_models=lambda: [])
    scope = {"type": "http", "method": "POST", "path": f"/infer/{model}", "headers": [], "query_string": b""}
    sent = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    body = json.loads(sent[1]["body"])
    assert sent[0]["status"] == 404 and body["error"] == error
    assert ("startup output lists the files it looked for" in body["detail"]) == (error == "model_not_served")
