"""Export a bundle's inference network to TorchScript (and ONNX where ``onnx`` is installed), checked against eager.

Usage::

    python scripts/export_bundle.py lesion_localization
    python scripts/export_bundle.py finetune_classification --ckpt_file /tmp/run/models/model.pt
    python scripts/export_bundle.py pretrain --image_size 64 --ckpt_file /tmp/tiny.pt --filepath /tmp/tiny.ts

What it does, for ``bundles/<bundle>``:

1. picks the network to export from ``configs/inference.json``: ``lesion_map_network_def`` when the bundle has one
   (the pretrain bundle, whose ``network_def`` returns a structure), else ``network_def`` -- the single-tensor
   network that ``verify_net_in_out`` checks (:data:`EXPORT_NET_IDS`);
2. reads the checkpoint (default: the config's ``ckpt_path``, else ``models/model.pt``); a checkpoint of the network a
   thin wrapper holds (``RadLASLesionMap.network``, ``RadLASClassifierLogits.classifier``) is re-keyed for the wrapper;
3. runs ``monai.bundle ckpt_export`` (metadata and config embedded in the file): ``torch.jit.script`` first and
   ``torch.jit.trace`` where scripting fails (``use_trace=None``), writing ``models/model.ts``;
4. reloads the file with ``torch.jit.load`` and compares it with the eager network on a seeded batch of two images
   (``torch.allclose(atol=1e-5)``); a mismatch raises :class:`ExportVerificationError`;
5. with ``onnx`` importable, also ``monai.bundle onnx_export`` to ``models/model.onnx`` (dynamic batch axis), checked
   with ``onnx.checker`` and, where ``onnxruntime`` is installed, against eager like the TorchScript file.

Any other ``--key value`` overrides the bundle config (e.g. ``--image_size 64``), as ``monai.bundle`` does.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
BUNDLES_DIR = REPO / "bundles"
EXPORT_CONFIG = "inference.json"
META_FILE = "metadata.json"
#: config IDs of the single-tensor inference network, first match wins
EXPORT_NET_IDS = ("lesion_map_network_def", "network_def")
#: keyword arguments of ``torch.jit.trace``: the reloaded file is compared with eager below, so the (slow) built-in
#: re-trace check is skipped
TRACE_KWARGS = {"check_trace": False}


class ExportVerificationError(RuntimeError):
    """An exported network does not reproduce the eager network.

    Args:
        path: the exported file.
        reason: what differs.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def bundle_path(bundle: str | os.PathLike, bundles_dir: str | os.PathLike | None = None) -> Path:
    """The bundle folder: ``bundle`` itself when it is a folder with ``configs/``, else ``bundles_dir/bundle``.

    Raises:
        FileNotFoundError: neither is a bundle folder.
    """
    candidate = Path(bundle)
    if (candidate / "configs").is_dir():
        return candidate.resolve()
    root = Path(bundles_dir) if bundles_dir is not None else BUNDLES_DIR
    candidate = root / str(bundle)
    if not (candidate / "configs").is_dir():
        known = sorted(p.name for p in root.iterdir() if (p / "configs").is_dir()) if root.is_dir() else []
        raise FileNotFoundError(f"bundle {bundle!r}: no {candidate / 'configs'} (bundles under {root}: {known})")
    return candidate.resolve()


def export_network_id(config: Mapping[str, Any]) -> str:
    """The ID of the network to export and verify: the first of :data:`EXPORT_NET_IDS` in ``config``.

    Raises:
        KeyError: the config has none of them.
    """
    for net_id in EXPORT_NET_IDS:
        if net_id in config:
            return net_id
    raise KeyError(f"none of the network IDs {EXPORT_NET_IDS} is in the config (IDs: {sorted(config)})")


def _parser(bundle_root: Path, overrides: Mapping[str, Any]):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(f=str(bundle_root / "configs" / EXPORT_CONFIG))
    parser.read_meta(f=str(bundle_root / "configs" / META_FILE))
    parser.update(pairs=dict(overrides))
    return parser


def build_network(bundle_root: str | os.PathLike, net_id: str, overrides: Mapping[str, Any]) -> torch.nn.Module:
    """A fresh, untrained instance of ``net_id`` from the bundle's ``inference.json`` (with ``overrides``)."""
    return _parser(Path(bundle_root), overrides).get_parsed_content(net_id)


def checkpoint_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], bool]:
    """The network state dict in ``model.pt`` (a bare state dict) or a full training checkpoint (``network``).

    Returns:
        ``(state, bare)``: the state dict, and whether the file is that state dict itself.
    """
    from radlas_monai.handlers.checkpoint_io import load_checkpoint

    checkpoint = load_checkpoint(path)
    if isinstance(checkpoint.get("network"), Mapping):
        return dict(checkpoint["network"]), False
    return checkpoint, True


def checkpoint_prefix(network: torch.nn.Module, state: Mapping[str, Any], path: str | os.PathLike = "") -> str:
    """The key prefix that makes ``state`` the state dict of ``network``.

    ``""`` when ``state`` is ``network``'s own state dict; ``"<name>."`` when it is the state dict of the direct
    child ``<name>`` (the network a thin wrapper holds, e.g. ``RadLASLesionMap.network``). Keys and shapes must match.

    Raises:
        ValueError: neither the network nor a direct child has exactly the checkpoint's keys and shapes (the
            message names the differences).
    """
    shapes = {k: tuple(getattr(v, "shape", ())) for k, v in state.items()}
    candidates = [("", network), *network.named_children()]
    for name, module in candidates:
        own = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        if own == shapes:
            return f"{name}." if name else ""
    own = set(network.state_dict())
    missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
    raise ValueError(
        f"checkpoint {os.fspath(path)} fits neither {type(network).__name__} nor the network it wraps: "
        f"{len(missing)} keys missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
    )


def prepare_checkpoint(network: torch.nn.Module, ckpt_file: str | os.PathLike, work_dir: str | os.PathLike) -> Path:
    """``ckpt_file`` as a bare state dict of ``network`` (re-keyed for a wrapper), ready for ``ckpt_export``.

    Returns:
        ``ckpt_file`` itself when it already is one, else a new file in ``work_dir``.

    Raises:
        ValueError: the checkpoint fits neither ``network`` nor one of its submodules.
    """
    state, bare = checkpoint_state(ckpt_file)
    prefix = checkpoint_prefix(network, state, ckpt_file)
    if bare and not prefix:
        return Path(ckpt_file)
    adapted = Path(work_dir) / "export_state_dict.pt"
    torch.save({prefix + key: value for key, value in state.items()}, adapted)
    logger.info("checkpoint %s re-keyed with prefix %r for the exported network", ckpt_file, prefix)
    return adapted


def default_input_shape(bundle_root: Path, overrides: Mapping[str, Any]) -> list[int]:
    """``[1, C, H, W]`` from ``metadata.json``; ``H = W = image_size`` when ``image_size`` is overridden."""
    meta = json.loads((bundle_root / "configs" / META_FILE).read_text())
    image = meta["network_data_format"]["inputs"]["image"]
    spatial = [int(s) for s in image["spatial_shape"]]
    if "image_size" in overrides:
        spatial = [int(overrides["image_size"])] * len(spatial)
    return [1, int(image["num_channels"]), *spatial]


def max_abs_difference(expected: torch.Tensor, actual: torch.Tensor) -> float:
    """Largest absolute difference; ``inf`` when the shapes differ."""
    if expected.shape != actual.shape:
        return float("inf")
    return float((expected.float() - actual.float()).abs().max())


def _verification_batch(input_shape: Sequence[int], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((2, *input_shape[1:]), generator=generator)  # batch 2: the batch axis must stay free


def verify_export(
    path: str | os.PathLike,
    network: torch.nn.Module,
    reloaded: Any,
    input_shape: Sequence[int],
    atol: float = 1e-5,
    seed: int = 0,
) -> float:
    """Compare a reloaded export with the eager ``network`` on a seeded batch of two images.

    Args:
        path: the exported file (for the error message).
        network: the eager network with the checkpoint loaded.
        reloaded: a callable ``tensor -> tensor`` (the reloaded TorchScript module, or an ONNX session adapter).
        input_shape: ``[1, C, H, W]``.
        atol: absolute tolerance (``torch.allclose``, ``rtol=0``).
        seed: seed of the input batch.

    Returns:
        The largest absolute difference.

    Raises:
        ExportVerificationError: the outputs differ by more than ``atol`` or in shape.
    """
    batch = _verification_batch(input_shape, seed)
    network.eval()
    # numerics only: skip the TorchScript executor's profiling and fusion passes, which cost seconds on CPU
    with torch.no_grad(), torch.jit.optimized_execution(False):
        expected = network(batch)
        actual = reloaded(batch)
    difference = max_abs_difference(expected, actual)
    if not difference <= atol:
        raise ExportVerificationError(
            path,
            f"output differs from eager: max |difference| {difference:.3g} > atol {atol:g} "
            f"(shapes {tuple(expected.shape)} vs {tuple(actual.shape)})",
        )
    return difference


def _ckpt_export(use_trace: bool, **kwargs: Any) -> None:
    from monai.bundle import ckpt_export

    converter_kwargs = dict(TRACE_KWARGS) if use_trace else {}
    ckpt_export(use_trace=use_trace, converter_kwargs=converter_kwargs, **kwargs)


def scriptable(network: torch.nn.Module) -> bool:
    """Whether ``torch.jit.script`` compiles ``network`` (the reason is logged when it does not)."""
    try:
        torch.jit.script(network)
    except Exception as err:  # torch.jit.script rejects Python it cannot compile in many ways
        logger.info("torch.jit.script failed (%s: %s)", type(err).__name__, (str(err).strip().splitlines() or [""])[0])
        return False
    return True


def export_torchscript(network: torch.nn.Module, use_trace: bool | None, **kwargs: Any) -> str:
    """``monai.bundle ckpt_export``: script when ``use_trace`` is False, trace when True, and when None script if
    ``network`` (the eager network, tried in memory) is scriptable, else trace.

    Returns:
        ``"script"`` or ``"trace"``, the method that produced the file.
    """
    if use_trace is None:
        use_trace = not scriptable(network)
    _ckpt_export(use_trace, **kwargs)
    return "trace" if use_trace else "script"


def onnx_available() -> bool:
    """Whether the optional ``onnx`` package is importable."""
    return importlib.util.find_spec("onnx") is not None


def export_onnx(input_shape: Sequence[int], **kwargs: Any) -> None:
    """``monai.bundle onnx_export`` (traced) with named ``image``/``pred`` tensors and a dynamic batch axis."""
    from monai.bundle import onnx_export

    converter_kwargs = {
        "input_names": ["image"],
        "output_names": ["pred"],
        "dynamic_axes": {"image": {0: "batch"}, "pred": {0: "batch"}},
    }
    onnx_export(use_trace=True, input_shape=list(input_shape), converter_kwargs=converter_kwargs, **kwargs)


def _onnx_runner(path: Path):
    """``tensor -> tensor`` through onnxruntime, or None when onnxruntime is not installed."""
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda batch: torch.from_numpy(session.run(None, {"image": batch.numpy()})[0])


def export_bundle(
    bundle: str,
    bundles_dir: str | None = None,
    net_id: str | None = None,
    ckpt_file: str | None = None,
    filepath: str | None = None,
    input_shape: Sequence[int] | None = None,
    use_trace: bool | None = None,
    onnx: bool | None = None,
    atol: float = 1e-5,
    seed: int = 0,
    **override: Any,
) -> dict[str, Any]:
    """Export ``bundles/<bundle>``'s inference network to ``models/model.ts`` (+ ``model.onnx``), verified.

    Args:
        bundle: bundle name under ``bundles_dir``, or a bundle folder.
        bundles_dir: where bundles live (default: the repository's ``bundles/``).
        net_id: network ID in ``inference.json`` (default: :func:`export_network_id`).
        ckpt_file: weights (default: the config's ``ckpt_path``, else ``<bundle>/models/model.pt``).
        filepath: TorchScript file (default ``<bundle>/models/model.ts``); the ONNX file takes its stem.
        input_shape: ``[1, C, H, W]`` example input (default :func:`default_input_shape`).
        use_trace: None (script, else trace), True (trace) or False (script only).
        onnx: None (export ONNX when ``onnx`` is importable), True (required), False (skip).
        atol: tolerance of the comparison with eager.
        seed: seed of the comparison input.
        override: bundle config overrides, e.g. ``image_size=64``.

    Returns:
        ``{"bundle", "net_id", "checkpoint", "torchscript", "method", "max_abs_diff", "onnx", "onnx_max_abs_diff"}``
        (ONNX entries None when not exported or not checked numerically).

    Raises:
        FileNotFoundError: no such bundle or checkpoint.
        ImportError: ``onnx=True`` without the ``onnx`` package.
        ExportVerificationError: an exported file does not reproduce the eager network.
    """
    root = bundle_path(bundle, bundles_dir)
    config_file = root / "configs" / EXPORT_CONFIG
    meta_file = root / "configs" / META_FILE
    overrides = dict(override)
    config = json.loads(config_file.read_text())
    if "bundle_root" in config:
        overrides.setdefault("bundle_root", str(root))
    net_id = net_id or export_network_id(config)
    if ckpt_file is None:
        ckpt_file = _parser(root, overrides).get_parsed_content("ckpt_path") if "ckpt_path" in config else None
        ckpt_file = ckpt_file or str(root / "models" / "model.pt")
    if not Path(ckpt_file).is_file():
        raise FileNotFoundError(f"checkpoint {ckpt_file} does not exist (train the bundle or pass --ckpt_file)")
    filepath = Path(filepath) if filepath is not None else root / "models" / "model.ts"
    filepath.parent.mkdir(parents=True, exist_ok=True)
    input_shape = [int(s) for s in (input_shape or default_input_shape(root, overrides))]
    if onnx and not onnx_available():
        raise ImportError("onnx=True but the onnx package is not installed: pip install onnx onnxruntime")

    network = build_network(root, net_id, overrides)
    report: dict[str, Any] = {"bundle": root.name, "net_id": net_id, "checkpoint": str(ckpt_file)}
    with tempfile.TemporaryDirectory(prefix="radlas_export_") as work_dir:
        from radlas_monai.handlers.checkpoint_io import load_network_weights

        weights = prepare_checkpoint(network, ckpt_file, work_dir)
        load_network_weights(network, weights)  # the eager reference; shapes checked, keys named on a mismatch
        common = {
            "net_id": net_id,
            "ckpt_file": str(weights),
            "meta_file": str(meta_file),
            "config_file": str(config_file),
            **overrides,
        }
        method = export_torchscript(network, use_trace, filepath=str(filepath), input_shape=input_shape, **common)
        reloaded = torch.jit.load(str(filepath), map_location="cpu").eval()
        difference = verify_export(filepath, network, reloaded, input_shape, atol=atol, seed=seed)
        report.update(torchscript=str(filepath), method=method, max_abs_diff=difference, onnx=None)
        report["onnx_max_abs_diff"] = None
        logger.info("%s: %s (torch.jit.%s), max |eager - reloaded| %.3g", root.name, filepath, method, difference)
        if onnx is not False and onnx_available():
            onnx_path = filepath.with_suffix(".onnx")
            export_onnx(input_shape, filepath=str(onnx_path), **common)
            import onnx as onnx_package

            onnx_package.checker.check_model(str(onnx_path))
            runner = _onnx_runner(onnx_path)
            report["onnx"] = str(onnx_path)
            if runner is not None:
                report["onnx_max_abs_diff"] = verify_export(onnx_path, network, runner, input_shape, atol, seed)
    return report


if __name__ == "__main__":
    import fire

    logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")
    fire.Fire(export_bundle)
