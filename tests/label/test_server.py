"""A real RadLAS MONAI Label server on 127.0.0.1, spoken to over HTTP (tiny 64 px networks, two studies).

The server (the session's ``server`` fixture, tests/label/conftest.py) runs with every proxy variable pointed at a
dead local port, so any outbound connection it tried (model zoo, SAM checkpoints, DICOMweb) would fail the start or
the requests.
"""

from __future__ import annotations

import importlib.util
import io
import json
import socket

import numpy as np
import pytest
from label_fixtures import CLASS_NAMES, radiograph
from label_server import MAX_UPLOAD_MB
from label_server import png_bytes as _png_bytes

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("monailabel") is None,
        reason="MONAI Label is not installed: run scripts/install_label.sh (the project with -c "
        "requirements/constraints.txt and its label extra, monailabel==0.8.5 with --no-deps)",
    ),
]


def _image(body: bytes) -> np.ndarray:
    from PIL import Image

    return np.array(Image.open(io.BytesIO(body)))


def test_info_lists_both_models(server):
    status, _, body = server.request("GET", "/info/")
    info = json.loads(body)
    assert status == 200 and set(info["models"]) == {"radlas_lesion", "radlas_classification"}
    assert info["models"]["radlas_classification"]["labels"] == CLASS_NAMES
    assert "device" not in info["models"]["radlas_lesion"]["config"]


def test_datastore_lists_png_and_dicom_and_keeps_studies_clean(server, studies):
    status, _, body = server.request("GET", "/datastore/?output=all")
    assert status == 200
    assert {"study-png", "study-dx"} <= set(json.loads(body)["objects"])
    assert sorted(p.name for p in studies.iterdir()) == ["study-dx.dcm", "study-png.png"]  # no index, no labels


def test_lesion_on_upload_returns_mask_in_input_geometry(server):
    upload = ("chest.png", _png_bytes(radiograph(70, 90)))
    status, headers, body = server.infer("radlas_lesion", "output=image", {"method": "percentile", "percentile": 95})
    assert status == 422  # neither file nor image id
    status, headers, body = server.infer(
        "radlas_lesion", "output=image", {"method": "percentile", "percentile": 95}, upload
    )
    assert status == 200 and headers["content-type"] == "image/png"
    mask = _image(body)
    assert mask.shape == (70, 90) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1} and mask.any()
    status, _, body = server.infer("radlas_lesion", "output=json", {"method": "percentile", "percentile": 95}, upload)
    result = json.loads(body)
    assert status == 200 and result["image_shape"] == [70, 90] and result["method"] == "percentile"
    assert len(result["boxes"]) == len(result["box_scores"]) >= 1
    for x0, y0, x1, y1 in result["boxes"]:
        assert 0 <= x0 < x1 <= 90 and 0 <= y0 < y1 <= 70
    low, high = result["heatmap_range"]
    assert 0.0 <= low <= high <= 1.0 and result["image_score"] == pytest.approx(high)


def test_lesion_on_datastore_dicom(server):
    status, _, body = server.infer("radlas_lesion", "image=study-dx&output=image", {"label": "heatmap"})
    heat = _image(body)
    assert status == 200 and heat.shape == (80, 96) and heat.max() == 255  # 8-bit heat map, rows = y
    status, _, body = server.infer("radlas_lesion", "image=study-dx&output=json", {"method": "fixed", "threshold": 0.5})
    result = json.loads(body)
    assert status == 200 and result["image_shape"] == [80, 96] and result["source_format"] == "dicom"
    assert isinstance(result["boxes"], list) and result["value"] == 0.5


def test_classification_scores_every_class(server):
    status, _, body = server.infer("radlas_classification", "image=study-png&output=json")
    result = json.loads(body)
    assert status == 200 and list(result["scores"]) == CLASS_NAMES
    assert all(0.0 <= p <= 1.0 for p in result["scores"].values()) and result["prediction"] in CLASS_NAMES


def _nifti_volume() -> bytes:
    import nibabel as nib

    volume = nib.Nifti1Image(np.random.default_rng(0).random((16, 16, 4)).astype(np.float32), np.eye(4))
    return volume.to_bytes()


PARAM = "invalid_request_parameter"
BIG = b"\0" * (MAX_UPLOAD_MB * 2**20 + 10)
BAD_REQUESTS = [
    # [name, model, query, params, upload, status, error code]
    ["corrupt", "radlas_lesion", "", None, ("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40), 422, "unreadable_image"],
    ["not an image", "radlas_lesion", "", None, ("notes.dcm", b"just some text " * 10), 422, "unreadable_image"],
    ["3D volume", "radlas_lesion", "", None, ("ct.nii", "volume"), 422, "unreadable_image"],
    ["unknown model", "deepedit", "", None, ("x.png", "image"), 404, "unknown_model"],
    [
        "oversized",
        "radlas_lesion",
        "",
        None,
        ("big.png", BIG),
        413,
        "upload_too_large",
    ],
    [
        "unknown param",
        "radlas_lesion",
        "",
        {"model_filename": "x.pt"},
        ("x.png", "image"),
        422,
        "invalid_request_parameter",
    ],
    ["bad range", "radlas_lesion", "", {"threshold": 3}, ("x.png", "image"), 422, PARAM],
    ["session", "radlas_lesion", "session_id=abc&", None, ("x.png", "image"), 422, PARAM],
    ["path as image", "radlas_lesion", "image=..%2Fetc%2Fpasswd&", None, None, 422, "invalid_image_id"],
]


@pytest.mark.parametrize(
    "name, model, query, params, upload, status, error", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_requests_get_json_errors(server, name, model, query, params, upload, status, error):
    if upload and upload[1] == "image":
        upload = (upload[0], _png_bytes(radiograph(20, 20)))
    elif upload and upload[1] == "volume":
        upload = (upload[0], _nifti_volume())
    got, headers, body = server.infer(model, query + "output=json", params, upload)
    assert got == status, body[:300]
    assert headers["content-type"].startswith("application/json") and json.loads(body)["error"] == error
    assert server.request("GET", "/info/")[0] == 200


def _raw_upload_head(server, length: int, expect: bool) -> bytes:
    host = server.base.split("//", 1)[1]
    lines = [
        "POST /infer/radlas_lesion?output=json HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/octet-stream",
        f"Content-Length: {length}",
    ]
    if expect:
        lines.append("Expect: 100-continue")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_answer(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


@pytest.mark.parametrize("expect", [True, False], ids=["expect-100-continue", "declared-beyond-drain-budget"])
def test_oversized_upload_is_refused_before_the_body_is_sent(server, expect):
    # A client that waits for 100 Continue gets the 413 and never sends the body; a body declared beyond the
    # drain budget (limit + 64 MiB) is answered from the headers alone. Neither sends a byte of body here.
    length = MAX_UPLOAD_MB * 2**20 + 10 if expect else 200 * 2**20
    host, port = server.base.split("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(_raw_upload_head(server, length, expect))
        answer = _read_answer(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"100 Continue" not in head and json.loads(body)["error"] == "upload_too_large"


def test_oversized_upload_answer_is_read_reliably_by_a_sending_client(server):
    # urllib sends the whole body before reading: the server drains it, so the 413 arrives every time.
    for _ in range(5):
        status, headers, body = server.infer("radlas_lesion", "output=json", None, ("big.png", BIG))
        assert status == 413 and json.loads(body)["error"] == "upload_too_large"


@pytest.mark.parametrize(
    "params",
    [
        {"method": "$open(r'{marker}', 'w').write('x')"},
        {"label": "@__local__", "method": "$open(r'{marker}', 'w')"},
        {"label_info": [{"_target_": "builtins.open", "file": "{marker}", "mode": "w"}]},
        {"method": "otsu", "threshold": 0.5, "image": "{marker}"},
    ],
)
def test_config_expressions_are_refused_and_not_evaluated(server, params):
    text = json.dumps(params).replace("{marker}", str(server.marker).replace("\\", "/"))
    upload = ("x.png", _png_bytes(radiograph(20, 20)))
    status, _, body = server.infer("radlas_lesion", "output=json", text, upload)
    assert status == 422 and json.loads(body)["error"] == "invalid_request_parameter"
    assert not server.marker.exists()


def test_disabled_endpoints_and_cors(server):
    for method, path in [("POST", "/train/radlas_lesion"), ("PUT", "/datastore/?image=x"), ("GET", "/model/x")]:
        status, _, body = server.request(method, path)
        assert status == 404 and json.loads(body)["error"] == "endpoint_disabled"
    preflight = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    _, headers, _ = server.request("OPTIONS", "/infer/radlas_lesion", headers=preflight)
    assert "access-control-allow-origin" not in {k.lower() for k in headers}


def test_startup_states_the_real_cors_policy(server):
    log = server.log.read_text()
    origins = [server.base, f"http://localhost:{server.port}"]
    assert "Allow Origins: ['*']" not in log
    assert f"Allow Origins: {origins}" in log  # MONAI Label's own line names the origins really allowed
    assert f"CORS: browsers may call this server only from {', '.join(origins)} (GET and POST" in log


def test_startup_says_which_models_are_served_and_logs_to_the_cache(server):
    from radlas_monai.label.server import APP_DIR

    console = server.log.read_text()
    weights = server.bundles / "pretrain" / "models" / "model.pt"
    assert "RadLAS MONAI Label serves 2 of 2 models" in console
    assert f"radlas_lesion          served      weights {weights} (from --lesion_bundle)" in console
    log_file = server.state / "logs" / "app.log"
    assert f"log={log_file}" in console and "RadLAS MONAI Label serves 2 of 2 models" in log_file.read_text()
    assert not (APP_DIR / "logs").exists()


def test_server_still_answers_good_requests(server):
    status, _, body = server.infer("radlas_classification", "image=study-dx&output=json")
    assert status == 200 and len(json.loads(body)["scores"]) == len(CLASS_NAMES)
    assert "Traceback" not in server.log.read_text()
