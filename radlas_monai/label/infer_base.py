"""What both RadLAS infer tasks share: request screening, safe decoding, resizing, network loading.

Built on MONAI Label's :class:`~monailabel.tasks.infer.basic_infer.BasicInferTask` (not ``BundleInferTask``:
that one imports torchvision, mishandles 2D outputs and copies request values into a bundle
``ConfigParser``). The request that reaches :meth:`RadLASInferTask.__call__` is reduced to the image path
plus allow-listed parameters (:mod:`radlas_monai.label.params`) before MONAI Label's pipeline sees it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from monai.inferers import SimpleInferer
from monailabel.tasks.infer.basic_infer import BasicInferTask

from radlas_monai.data.errors import RadiographReadError
from radlas_monai.label.decode import SafeRadiographDecoder
from radlas_monai.label.models import BundleSpec
from radlas_monai.label.params import ParamSpec, RequestParamError, validate_params

__all__ = ["RadLASInferTask", "FRAMEWORK_KEYS"]

logger = logging.getLogger(__name__)

#: Request keys that MONAI Label itself puts into an infer request (everything else must be allow-listed).
FRAMEWORK_KEYS = frozenset({"model", "image", "description", "save_label", "label_tag"})


class RadLASInferTask(BasicInferTask):
    """Base of the RadLAS infer tasks (2D radiographs, CPU or the server's one device).

    Args:
        spec: the bundle being served (:class:`~radlas_monai.label.models.BundleSpec`).
        build: ``build(spec, device) -> nn.Module`` (eval mode, weights loaded).
        decoder: decodes request images in a resource-limited worker.
        allowed: the task's request-parameter allow-list.
        infer_type: MONAI Label ``InferType`` value (``"segmentation"``, ``"classification"``).
        labels: label names (segmentation) or class names (classification).
        description: shown by viewers.
        device: ``"cpu"`` or a CUDA device; ``None`` picks CUDA when available.
        defaults: parameter defaults, shown in ``/info`` (viewers send them back).
    """

    def __init__(
        self,
        spec: BundleSpec,
        build: Callable[[BundleSpec, Any], torch.nn.Module],
        decoder: SafeRadiographDecoder,
        allowed: Mapping[str, ParamSpec],
        infer_type: str,
        labels: Any,
        description: str,
        device: str | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            path=str(spec.checkpoint),
            network=None,
            type=infer_type,
            labels=labels,
            dimension=2,
            description=description,
            config=dict(defaults or {}),
        )
        self._config.pop("device", None)  # the server decides the device; clients may not choose
        self.spec = spec
        self.build = build
        self.decoder = decoder
        self.allowed = dict(allowed)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._network: tuple[torch.nn.Module, float] | None = None
        self._network_lock = threading.Lock()

    # ------------------------------------------------------------------ request
    def screen_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Reduce a MONAI Label request to ``{"image": path, **allowed params}``.

        Raises:
            RequestParamError: a key outside the framework keys and the allow-list, or a bad value.
        """
        image = request.get("image")
        if not isinstance(image, str) or not image:
            raise RequestParamError("image", "an uploaded file or a datastore image id is required")
        params = {k: v for k, v in request.items() if k not in FRAMEWORK_KEYS}
        return {"image": image, **validate_params(params, self.allowed)}

    def __call__(self, request: Mapping[str, Any], callbacks: Any = None) -> tuple[str | None, dict]:
        """Run one request (screened first; see :meth:`screen_request`)."""
        clean = self.screen_request(request)
        clean["device"] = self.device
        return super().__call__(clean, callbacks)

    # ------------------------------------------------------------------ pre
    def load_image(self, data: dict[str, Any]) -> dict[str, Any]:
        """Decode ``data["image_path"]`` safely; add the model input and the input geometry."""
        path = data["image_path"]
        if not os.path.isfile(path):
            raise RadiographReadError(path, "image not found in the datastore")
        upload = self.decoder(path)
        pixels = torch.from_numpy(upload.pixels)[None]  # (1, H, W)
        size = (self.spec.image_size, self.spec.image_size)
        data["original_shape"] = tuple(int(s) for s in upload.pixels.shape)
        data["image_id"] = upload.image_id
        data["source_format"] = upload.source_format
        data["image"] = F.interpolate(pixels[None], size=size, mode="area")[0].contiguous()
        return data

    def pre_transforms(self, data: Any = None) -> list[Callable]:
        return [self.load_image]

    def inferer(self, data: Any = None) -> SimpleInferer:
        return SimpleInferer()

    def inverse_transforms(self, data: Any = None) -> None:
        return None

    def post_transforms(self, data: Any = None) -> list[Callable]:
        return []

    # ------------------------------------------------------------------ network
    def is_valid(self) -> bool:
        return self.spec.checkpoint.is_file()

    def _get_network(self, device: Any, data: Any) -> torch.nn.Module:
        """Build once, reload when ``models/model.pt`` changes (weights-only loading; no config parsing)."""
        with self._network_lock:
            mtime = os.stat(self.spec.checkpoint).st_mtime if self.spec.checkpoint.is_file() else -1.0
            if self._network is None or self._network[1] != mtime:
                logger.info("loading %s from %s", self.spec.name, self.spec.checkpoint)
                self._network = (self.build(self.spec, device), mtime)
            return self._network[0]

    def forward(self, network: torch.nn.Module, batch: torch.Tensor) -> Any:
        """The task's network call on a ``(1, 1, S, S)`` batch; returns what :meth:`writer` reads as ``pred``."""
        raise NotImplementedError

    def run_inferer(self, data: dict[str, Any], convert_to_batch: bool = True, device: Any = "cpu") -> dict[str, Any]:
        network = self._get_network(device, data)
        with torch.inference_mode():
            data[self.output_label_key] = self.forward(network, data[self.input_key][None].to(device))
        return data

    def clear(self) -> None:
        self._network = None
