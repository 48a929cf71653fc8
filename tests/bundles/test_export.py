"""``scripts/export_bundle.py``: TorchScript (and ONNX where installed) exports that reproduce the eager networks.

Tiny networks (64 px) with their own checkpoints in ``tmp_path``; the exported file is reloaded with
``torch.jit.load`` and compared with an eager network built and loaded here, on a seeded batch of three images.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from test_model_zoo_gate import BUNDLES_DIR, CheckpointFactory, load_script, present_overrides, read_json

#: the deployable bundles (pretrain exports the same RadLASLesionMap class as lesion_localization)
EXPORT_BUNDLES = ("lesion_localization", "finetune_classification")
SIZE = 64
ATOL = 1e-5

export_bundle = load_script("export_bundle")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> CheckpointFactory:
    return CheckpointFactory(tmp_path_factory.mktemp("export_checkpoints"))


def _overrides(bundle: str, checkpoints: CheckpointFactory) -> dict:
    config = read_json(BUNDLES_DIR / bundle / "configs" / "inference.json")
    return present_overrides(config, {"image_size": SIZE, "pretrained_ckpt": str(checkpoints.pretrain(SIZE))})


def _eager(bundle: str, overrides: dict, state: dict) -> tuple[torch.nn.Module, str]:
    """The exported network built from the bundle config with ``state`` loaded into it (or into the network a thin
    wrapper holds), and the key prefix that took."""
    config = read_json(BUNDLES_DIR / bundle / "configs" / "inference.json")
    net_id = export_bundle.export_network_id(config)
    network = export_bundle.build_network(BUNDLES_DIR / bundle, net_id, overrides)
    prefix = export_bundle.checkpoint_prefix(network, state)
    network.load_state_dict({prefix + k: v for k, v in state.items()})
    return network.eval(), prefix


@pytest.mark.slow
@pytest.mark.parametrize("bundle", EXPORT_BUNDLES)
def test_torchscript_export_reproduces_eager(bundle, tmp_path, checkpoints):
    ckpt = checkpoints.bundle(bundle, SIZE)
    overrides = _overrides(bundle, checkpoints)
    target = tmp_path / "models" / "model.ts"
    report = export_bundle.export_bundle(bundle, ckpt_file=str(ckpt), filepath=str(target), onnx=False, **overrides)
    assert report["torchscript"] == str(target) and report["method"] in ("script", "trace")
    assert report["max_abs_diff"] <= ATOL

    extra = {"metadata.json": "", "inference.json": ""}
    exported = torch.jit.load(str(target), map_location="cpu", _extra_files=extra).eval()
    meta = read_json(BUNDLES_DIR / bundle / "configs" / "metadata.json")
    assert json.loads(extra["metadata.json"])["version"] == meta["version"]
    assert json.loads(extra["inference.json"]) == read_json(BUNDLES_DIR / bundle / "configs" / "inference.json")

    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    eager, prefix = _eager(bundle, overrides, state)
    exported_state = exported.state_dict()
    carried = [
        k for k, v in state.items() if prefix + k in exported_state and torch.equal(exported_state[prefix + k], v)
    ]
    assert len(carried) == len(state), f"{len(state) - len(carried)} checkpoint tensors differ in the export"
    batch = torch.rand((3, 1, SIZE, SIZE), generator=torch.Generator().manual_seed(7))  # batch size not traced
    with torch.no_grad(), torch.jit.optimized_execution(False):
        expected, actual = eager(batch), exported(batch)
    assert actual.shape == expected.shape and actual.shape[0] == 3
    assert torch.allclose(actual, expected, atol=ATOL), float((actual - expected).abs().max())

    readme = (BUNDLES_DIR / bundle / "docs" / "README.md").read_text()
    assert f"torch.jit.{report['method']}" in readme, f"{bundle}: docs/README.md must say the export uses this method"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="onnx is not installed (optional extra)")
@pytest.mark.parametrize("bundle", EXPORT_BUNDLES[:2])
def test_onnx_export_is_a_valid_model(bundle, tmp_path, checkpoints):
    import onnx

    target = tmp_path / "model.ts"
    report = export_bundle.export_bundle(
        bundle,
        ckpt_file=str(checkpoints.bundle(bundle, SIZE)),
        filepath=str(target),
        onnx=True,
        **_overrides(bundle, checkpoints),
    )
    assert report["onnx"] == str(target.with_suffix(".onnx"))
    onnx.checker.check_model(report["onnx"])
    if report["onnx_max_abs_diff"] is not None:
        assert report["onnx_max_abs_diff"] <= ATOL


def test_checkpoint_of_a_wrapped_network_is_re_keyed(tmp_path):
    from radlas_monai.networks import RadLAS, RadLASLesionMap

    inner = RadLAS(preset="tiny", img_size=32)
    wrapper = RadLASLesionMap(inner)
    path = tmp_path / "model.pt"
    torch.save({"network": inner.state_dict(), "optimizer": {}}, path)  # a full training checkpoint
    assert export_bundle.checkpoint_prefix(wrapper, inner.state_dict()) == "network."
    adapted = export_bundle.prepare_checkpoint(wrapper, path, tmp_path)
    state = torch.load(adapted, weights_only=True)
    assert set(state) == set(wrapper.state_dict())
    bare = tmp_path / "bare.pt"
    torch.save(wrapper.state_dict(), bare)
    assert export_bundle.prepare_checkpoint(wrapper, bare, tmp_path) == bare  # already fits: used as it is


def test_checkpoint_of_another_network_is_refused_naming_keys(tmp_path):
    from radlas_monai.networks import RadLAS, RadLASLesionMap

    wrapper = RadLASLesionMap(RadLAS(preset="tiny", img_size=32))
    path = tmp_path / "other.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(ValueError, match=r"fits neither RadLASLesionMap.*unexpected \(e.g. \[.bias., .weight.\]"):
        export_bundle.prepare_checkpoint(wrapper, path, tmp_path)


def test_verification_rejects_an_export_that_differs(tmp_path):
    network = torch.nn.Conv2d(1, 1, 3, padding=1)
    with pytest.raises(export_bundle.ExportVerificationError, match="max \\|difference\\|"):
        export_bundle.verify_export(tmp_path / "x.ts", network, lambda x: network(x) + 1e-3, [1, 1, 8, 8])
    assert export_bundle.verify_export(tmp_path / "x.ts", network, network, [1, 1, 8, 8]) == 0.0


def test_missing_bundle_and_checkpoint_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_bundle"):
        export_bundle.export_bundle("no_such_bundle")
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        export_bundle.export_bundle("pretrain", ckpt_file=str(tmp_path / "absent.pt"))
