"""The RadLAS MONAI Label server driven by MONAI Label's own client (``monailabel.client.MONAILabelClient``, 0.8.5).

The client adds ``client_id`` to the ``params`` of every ``infer`` (``null`` unless the client was made with one),
sends ``image=<id>`` even with an uploaded file, and reads JSON-only answers back as raw bytes. The server is the
session's ``server`` fixture (tests/label/conftest.py).
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from label_fixtures import CLASS_NAMES, radiograph

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("monailabel") is None,
        reason="MONAI Label is not installed: run scripts/install_label.sh",
    ),
    pytest.mark.filterwarnings("ignore:'cgi' is deprecated:DeprecationWarning"),  # the client parses multipart with cgi
]


def _client(server, tmp_path, client_id=None):
    from monailabel.client import MONAILabelClient

    return MONAILabelClient(server.base, tmpdir=str(tmp_path), client_id=client_id)


def _refusal(call) -> tuple[int, dict]:
    """Status and JSON body of a request the client reports as failed."""
    from monailabel.client.client import MONAILabelClientException

    with pytest.raises(MONAILabelClientException) as caught:
        call()
    status, _, body = caught.value.msg.partition("; Response: ")
    return int(status.removeprefix("Status: ")), json.loads(body)


def _png(path) -> np.ndarray:
    from PIL import Image

    return np.array(Image.open(path))


def test_info_and_datastore(server, tmp_path):
    client = _client(server, tmp_path)
    info = client.info()
    assert set(info["models"]) == {"radlas_lesion", "radlas_classification"}
    assert info["models"]["radlas_classification"]["labels"] == CLASS_NAMES
    assert {"study-png", "study-dx"} <= set(client.datastore()["objects"])


@pytest.mark.parametrize("client_id", [None, "slicer-7f3a"], ids=["no-client-id", "client-id"])
def test_lesion_on_a_datastore_image(server, tmp_path, client_id):
    client = _client(server, tmp_path, client_id)
    mask_file, result = client.infer("radlas_lesion", "study-dx", {"method": "percentile", "percentile": 95})
    mask = _png(mask_file)
    assert mask.shape == (80, 96) and set(np.unique(mask)) <= {0, 1} and mask.any()
    assert result["image_shape"] == [80, 96] and result["method"] == "percentile"
    assert len(result["boxes"]) == len(result["box_scores"]) >= 1


def test_classification_on_a_datastore_image(server, tmp_path):
    image, answer = _client(server, tmp_path).infer("radlas_classification", "study-png", {})
    result = json.loads(answer)  # a JSON-only answer comes back as the raw body
    assert image is None and list(result["scores"]) == CLASS_NAMES
    assert all(0.0 <= p <= 1.0 for p in result["scores"].values())


def test_upload_for_both_models(server, tmp_path):
    from radlas_monai.data.writers import write_png

    upload = tmp_path / "chest.png"
    write_png(radiograph(70, 90), upload)
    client = _client(server, tmp_path, client_id="cli")
    # the client always sends an image id; with an upload MONAI Label ignores it, so a name not in the datastore works
    heat_file, result = client.infer("radlas_lesion", "chest", {"label": "heatmap"}, file=str(upload))
    heat = _png(heat_file)
    assert heat.shape == (70, 90) and heat.dtype == np.uint8 and heat.max() == 255
    assert result["image_shape"] == [70, 90]
    _, answer = client.infer("radlas_classification", "", None, file=str(upload))
    assert list(json.loads(answer)["scores"]) == CLASS_NAMES


@pytest.mark.parametrize(
    "client_id, params, expected",
    [
        [None, {"model_filename": "other.pt"}, "'model_filename': is not accepted"],
        [None, {"device": "cuda"}, "'device': is not accepted"],
        [{"_target_": "builtins.open"}, {}, "config keys are not accepted"],
        [["list"], {}, "'client_id': must be text or null, got list"],
        ["x" * 300, {}, "'client_id': must be at most 256 characters, got 300"],
        ["$import os", {}, "starts with '$'"],
    ],
    ids=["other-key", "device", "config-key-as-client-id", "list-client-id", "long-client-id", "expression"],
)
def test_everything_else_is_still_refused(server, tmp_path, client_id, params, expected):
    client = _client(server, tmp_path, client_id)
    status, body = _refusal(lambda: client.infer("radlas_lesion", "study-dx", params))
    assert status == 422 and body["error"] == "invalid_request_parameter" and expected in body["detail"]


def test_next_sample_and_read_only_datastore(server, tmp_path, studies):
    client = _client(server, tmp_path, client_id="cli")
    assert client.next_sample("random", {})["id"] in {"study-png", "study-dx"}
    status, body = _refusal(lambda: client.upload_image(str(studies / "study-png.png"), "copy"))
    assert status == 404 and body["error"] == "endpoint_disabled"  # the studies folder is only read
    assert sorted(p.name for p in studies.iterdir()) == ["study-dx.dcm", "study-png.png"]
