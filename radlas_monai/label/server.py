"""Start the RadLAS MONAI Label server: 127.0.0.1, local bundles, guarded requests, no outbound traffic.

Used by ``scripts/monailabel_server.py`` / ``scripts/start_monailabel.sh``. Compared with
``monailabel start_server``: binds 127.0.0.1 unless another host is asked for (then warns: authentication
is off), CORS is limited to the given origins (never ``*``), uploads are capped (413), only the endpoints a
viewer needs are routed and ``/infer`` parameters are allow-listed (:class:`~radlas_monai.label.guard.
RequestGuard`), training / scoring / batch inference / sessions / tracking are off, nothing is written into
the app or studies folders (the log is ``<label cache>/logs/app.log``, :mod:`radlas_monai.label.app_logs`), and no
model zoo, SAM checkpoint or DICOMweb server is contacted. The console says at startup which models are served and
where their weights were looked for, and the real CORS policy.

MONAI Label reads its settings when first imported, so :func:`configure_settings` runs before any
``monailabel`` import.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radlas_monai.label.app_logs import add_log_file
from radlas_monai.label.guard import RequestGuard
from radlas_monai.label.params import CLASSIFICATION_PARAMS, LESION_PARAMS, RequestParamError
from radlas_monai.label.studies import IMAGE_PATTERNS, ensure_default_studies

__all__ = ["APP_DIR", "LOOPBACK_HOSTS", "configure_settings", "cors_policy", "build_asgi_app", "serve"]

logger = logging.getLogger(__name__)

APP_DIR = Path(__file__).resolve().parent
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORT = 8000
DEFAULT_MAX_UPLOAD_MB = 128


def configure_settings(
    studies: str | os.PathLike, port: int, conf: dict[str, str], cors_origins: Sequence[str] = ()
) -> dict[str, Any]:
    """Set MONAI Label's settings (environment and ``monailabel.config.settings``).

    Args:
        studies: the studies folder.
        port: the server's port.
        conf: the app's string settings (:mod:`radlas_monai.label.main`).
        cors_origins: the browser origins allowed. MONAI Label prints ``Allow Origins: [...]`` when its app module is
            first imported and allows ``*`` when none are set; with them set, that line names the real origins.

    Returns:
        The ``MONAI_LABEL_*`` values set.
    """
    values: dict[str, Any] = {
        "MONAI_LABEL_APP_DIR": str(APP_DIR),
        "MONAI_LABEL_CORS_ORIGINS": list(cors_origins),
        "MONAI_LABEL_STUDIES": os.path.realpath(os.fspath(studies)),
        "MONAI_LABEL_APP_CONF": dict(conf),
        "MONAI_LABEL_SERVER_PORT": int(port),
        "MONAI_LABEL_AUTH_ENABLE": False,
        "MONAI_LABEL_TASKS_TRAIN": False,
        "MONAI_LABEL_TASKS_SCORING": False,
        "MONAI_LABEL_TASKS_BATCH_INFER": False,
        "MONAI_LABEL_TASKS_STRATEGY": True,
        "MONAI_LABEL_AUTO_UPDATE_SCORING": False,
        "MONAI_LABEL_SESSIONS": False,
        "MONAI_LABEL_TRACKING_ENABLED": False,
        "MONAI_LABEL_DATASTORE_AUTO_RELOAD": False,
        "MONAI_LABEL_DATASTORE_FILE_EXT": list(IMAGE_PATTERNS),
        "MONAI_LABEL_INFER_CONCURRENCY": -1,
    }
    for key, value in values.items():
        text = json.dumps(value) if isinstance(value, (dict, list, bool)) else str(value)
        os.environ[key] = text
    from monailabel.config import settings

    for key, value in values.items():
        setattr(settings, key, value)
    return values


def _json_error(status: int, error: str, detail: str, **extra: Any) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=status, content={"error": error, "detail": detail, **extra})


def _add_exception_handlers(app: Any) -> None:
    from monailabel.interfaces.exception import MONAILabelException

    from radlas_monai.data.errors import RadiographReadError
    from radlas_monai.handlers.checkpoint_io import CheckpointError

    async def unreadable(request: Any, err: RadiographReadError) -> Any:  # the path is a server temp file
        return _json_error(422, "unreadable_image", f"the image cannot be read: {err.reason}", kind=err.kind)

    async def bad_param(request: Any, err: RequestParamError) -> Any:
        return _json_error(422, "invalid_request_parameter", str(err))

    async def no_model(request: Any, err: Exception) -> Any:
        logger.error("model unavailable: %s", err)
        return _json_error(503, "model_unavailable", "the model's checkpoint is missing or unreadable")

    async def monailabel_error(request: Any, err: MONAILabelException) -> Any:
        return _json_error(400, "bad_request", str(getattr(err, "msg", err)))

    app.add_exception_handler(RadiographReadError, unreadable)
    app.add_exception_handler(RequestParamError, bad_param)
    app.add_exception_handler(CheckpointError, no_model)
    app.add_exception_handler(FileNotFoundError, no_model)
    app.add_exception_handler(MONAILabelException, monailabel_error)


def cors_policy(allow_origins: Sequence[str]) -> str:
    """The CORS policy of :func:`_restrict_cors`, in words (logged at startup)."""
    return (
        f"CORS: browsers may call this server only from {', '.join(allow_origins)} (GET and POST, no credentials); "
        "pages from any other origin get no CORS headers (--allow_origins adds origins; '*' is never allowed)"
    )


def _restrict_cors(app: Any, allow_origins: Sequence[str]) -> None:
    """Replace MONAI Label's CORS middleware (``*`` unless configured) by one for ``allow_origins`` only."""
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware

    kept = [m for m in app.user_middleware if getattr(m, "cls", None) is not CORSMiddleware]
    cors = Middleware(
        CORSMiddleware,
        allow_origins=list(allow_origins),
        allow_credentials=False,
        allow_methods=["GET", "POST"],
        allow_headers=["*"],
    )
    app.user_middleware[:] = [cors, *kept]
    app.middleware_stack = None  # rebuilt on the first request


def build_asgi_app(max_body_bytes: int, allow_origins: Sequence[str]) -> RequestGuard:
    """MONAI Label's FastAPI app with RadLAS error handlers and CORS, wrapped in the request guard.

    :func:`configure_settings` must have run first.
    """
    from monailabel.app import app
    from monailabel.interfaces.utils.app import app_instance

    from radlas_monai.label.main import CLASSIFICATION_MODEL, LESION_MODEL

    _add_exception_handlers(app)
    _restrict_cors(app, allow_origins)
    return RequestGuard(
        app,
        allowed_params={LESION_MODEL: LESION_PARAMS, CLASSIFICATION_MODEL: CLASSIFICATION_PARAMS},
        max_body_bytes=max_body_bytes,
        served_models=lambda: app_instance().info()["models"].keys(),
        image_ids=lambda: app_instance().datastore().list_images(),
    )


def serve(
    studies: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    allow_origins: Sequence[str] = (),
    lesion_bundle: str | None = None,
    classification_bundle: str | None = None,
    lesion_checkpoint: str | None = None,
    classification_checkpoint: str | None = None,
    device: str | None = None,
    log_level: str = "info",
    decode_memory_mb: int = 4096,
    decode_timeout: float = 60.0,
) -> None:
    """Run the server until interrupted.

    Args:
        studies: folder of PNG / JPEG / single-frame DICOM radiographs; ``None``: synthetic radiographs
            written on first start (:func:`~radlas_monai.label.studies.ensure_default_studies`).
        host: interface to bind; anything but loopback is logged as a warning (authentication is off).
        port: TCP port.
        max_upload_mb: largest request body (413 above).
        allow_origins: browser origins allowed by CORS (e.g. an OHIF at ``http://localhost:3000``);
            the server's own origin is always allowed.
        lesion_bundle, classification_bundle: bundle folders (default: the repository's ``bundles/``).
        lesion_checkpoint, classification_checkpoint: explicit weights files.
        device: ``cpu`` or ``cuda`` (default: CUDA when available).
        log_level: uvicorn log level.
        decode_memory_mb: address-space cap of the worker process that decodes uploads (a hostile file that needs
            more fails its own request with 422 ``decode_failed``; the server keeps serving).
        decode_timeout: wall-clock seconds one upload may take to decode.

    Raises:
        FileNotFoundError: ``studies`` is given and is not a folder.
        ValueError: bad port or upload limit.
    """
    import uvicorn

    if not 0 < int(port) < 65536 or max_upload_mb <= 0:
        raise ValueError(f"need 0 < port < 65536 and max_upload_mb > 0, got port={port}, max_upload_mb={max_upload_mb}")
    if int(decode_memory_mb) <= 0 or float(decode_timeout) <= 0:
        raise ValueError(
            f"need decode_memory_mb > 0 and decode_timeout > 0, got {decode_memory_mb} and {decode_timeout}"
        )
    if not logging.getLogger().handlers:  # started without a logging set-up: still say on the console what is served
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log_file = add_log_file()
    if studies is None:
        studies = ensure_default_studies()
    elif not Path(studies).is_dir():
        raise FileNotFoundError(f"studies folder {studies} does not exist")
    conf = {
        key: str(value)
        for key, value in {
            "lesion_bundle": lesion_bundle,
            "classification_bundle": classification_bundle,
            "lesion_checkpoint": lesion_checkpoint,
            "classification_checkpoint": classification_checkpoint,
            "device": device,
            "decode_memory_mb": int(decode_memory_mb),
            "decode_timeout": float(decode_timeout),
        }.items()
        if value
    }
    own = [f"http://{name}:{int(port)}" for name in ("127.0.0.1", "localhost")]
    origins = list(dict.fromkeys([*own, *[str(o).rstrip("/") for o in allow_origins]]))
    configure_settings(studies, int(port), conf, origins)
    app = build_asgi_app(int(max_upload_mb * (1 << 20)), origins)
    if host not in LOOPBACK_HOSTS:
        logger.warning(
            "binding %s:%d with authentication OFF: anyone who can reach this address can run inference and read "
            "the studies folder; put the server behind an authenticating proxy or bind 127.0.0.1",
            host,
            int(port),
        )
    logger.info("RadLAS MONAI Label: http://%s:%d/ studies=%s log=%s", host, int(port), studies, log_file)
    logger.info("%s", cors_policy(origins))
    try:
        uvicorn.run(app, host=host, port=int(port), log_level=log_level, timeout_keep_alive=5, limit_concurrency=64)
    finally:
        from monailabel.interfaces.utils.app import apps

        for instance in list(apps.values()):  # stop the decoder workers of the app(s) started
            decoder = getattr(instance, "decoder", None)
            if decoder is not None:
                decoder.close()
