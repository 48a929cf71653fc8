"""The RadLAS MONAI Label app: ``radlas_lesion`` and ``radlas_classification`` on local bundles.

MONAI Label loads this file as the app's ``main.py`` and instantiates the class whose *direct* base is
``MONAILabelApp``. Start it with ``scripts/start_monailabel.sh`` (or ``python scripts/monailabel_server.py``),
which binds 127.0.0.1 and adds the request guard (:mod:`radlas_monai.label.guard`); see the README in this
folder.

App configuration (``conf``, strings, from ``MONAI_LABEL_APP_CONF`` or ``--conf key value``):

=========================  =======================================================================
``lesion_bundle``          lesion_localization bundle folder (default: ``bundles/lesion_localization``)
``classification_bundle``  finetune_classification bundle folder (default: ``bundles/finetune_classification``)
``lesion_checkpoint``      explicit weights file for ``radlas_lesion`` (default: the bundle's, else pretrain's)
``classification_checkpoint``  explicit weights file for ``radlas_classification``
``device``                 ``cpu`` / ``cuda`` (default: CUDA when available)
``decode_memory_mb``       address-space cap of the upload decoder (default 4096)
``decode_timeout``         seconds per decode (default 60)
``max_pixels``             largest image accepted (default 50_000_000)
=========================  =======================================================================

Models without a checkpoint are not listed by ``/info`` (MONAI Label's ``is_valid``). At startup the app says, on the
console and in the log, which models are served and which weights files it looked for (:func:`models_report`);
a model without weights makes that a warning. The app's log file is ``<label cache>/logs/app.log``, also when MONAI
Label's own launcher started it (:mod:`radlas_monai.label.app_logs`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from monailabel.datastore.local import LocalDatastore
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.tasks.activelearning.random import Random

from radlas_monai.label.app_logs import move_app_logs
from radlas_monai.label.decode import DEFAULT_MAX_PIXELS, DEFAULT_TIMEOUT, SafeRadiographDecoder
from radlas_monai.label.infer_classification import RadLASClassificationInfer
from radlas_monai.label.infer_lesion import RadLASLesionInfer
from radlas_monai.label.models import BundleSpec, classification_bundle_spec, lesion_bundle_spec
from radlas_monai.label.studies import IMAGE_PATTERNS, datastore_state_dir

__all__ = ["RadLASLabelApp", "LESION_MODEL", "CLASSIFICATION_MODEL", "default_bundles_dir", "models_report"]

logger = logging.getLogger(__name__)

LESION_MODEL = "radlas_lesion"
CLASSIFICATION_MODEL = "radlas_classification"


def default_bundles_dir() -> Path:
    """``$RADLAS_BUNDLES_DIR`` or the repository's ``bundles/`` (next to the installed package)."""
    env = os.environ.get("RADLAS_BUNDLES_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "bundles"


def _bundle_origin(conf: dict[str, str], model: str) -> str:
    """How the weights of ``model`` were chosen: a server option, ``$RADLAS_BUNDLES_DIR`` or the default."""
    prefix = "lesion" if model == LESION_MODEL else "classification"
    for key in (f"{prefix}_checkpoint", f"{prefix}_bundle"):
        if conf.get(key):
            return f"--{key}"
    if os.environ.get("RADLAS_BUNDLES_DIR"):
        return "$RADLAS_BUNDLES_DIR"
    return "the checkout radlas_monai is installed from, not the working directory"


def models_report(specs: dict[str, BundleSpec], origins: dict[str, str]) -> tuple[str, bool]:
    """The startup message: each model, served or not, and the weights files looked for.

    Args:
        specs: ``{model name: bundle spec}``.
        origins: ``{model name: how its bundle or weights were chosen}`` (``"--lesion_bundle"``, ...).

    Returns:
        The message (several lines) and whether every model is served.
    """
    served = {name: spec.checkpoint.is_file() for name, spec in specs.items()}
    width = max(len(name) for name in specs)
    count = f"{sum(served.values())} of {len(specs)}"
    lines = [f"RadLAS MONAI Label serves {count} models (GET /info/ lists only the served ones):"]
    for name, spec in specs.items():
        looked = " or ".join(str(p) for p in spec.searched or (spec.checkpoint,))
        if served[name]:
            lines.append(f"  {name:<{width}}  served      weights {spec.checkpoint} (from {origins[name]})")
        else:
            lines.append(f"  {name:<{width}}  NOT SERVED  no weights at {looked} (from {origins[name]})")
    if not all(served.values()):
        lines.append(
            "  to serve a model, train its bundle or pass --lesion_checkpoint / --classification_checkpoint FILE, "
            "--lesion_bundle / --classification_bundle DIR, or set RADLAS_BUNDLES_DIR (docs/monai_label.md)"
        )
    return "\n".join(lines), all(served.values())


class RadLASLabelApp(MONAILabelApp):
    """MONAI Label app serving RadLAS lesion localization and classification on 2D radiographs.

    Args:
        app_dir: the app folder (this package's folder).
        studies: local studies folder (PNG / JPEG / single-frame DICOM at its top level).
        conf: string settings, see the module docstring.
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        move_app_logs(app_dir)  # ``monailabel start_server`` logs into the app folder: this package
        conf = dict(conf or {})
        self.weights_origins = {name: _bundle_origin(conf, name) for name in (LESION_MODEL, CLASSIFICATION_MODEL)}
        bundles = default_bundles_dir()
        self.lesion_spec = lesion_bundle_spec(
            conf.get("lesion_bundle") or bundles / "lesion_localization", conf.get("lesion_checkpoint") or None
        )
        self.classification_spec = classification_bundle_spec(
            conf.get("classification_bundle") or bundles / "finetune_classification",
            conf.get("classification_checkpoint") or None,
        )
        self.device = conf.get("device") or None
        self.decoder = SafeRadiographDecoder(
            memory_limit=int(conf.get("decode_memory_mb", 4096)) << 20,
            timeout=float(conf.get("decode_timeout", DEFAULT_TIMEOUT)),
            max_pixels=int(conf.get("max_pixels", DEFAULT_MAX_PIXELS)),
        )
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="RadLAS",
            description="Interpretable radiograph analysis: lesion masks, scored boxes and diagnoses",
            version="1.0",
        )

    def init_datastore(self) -> Datastore:
        """A local datastore over ``studies`` (read only) whose index and labels live in the cache."""
        if self.studies.startswith(("http://", "https://")):
            raise ValueError(f"the RadLAS app serves local studies folders only, got {self.studies!r}")
        state = datastore_state_dir(self.studies)
        state.mkdir(parents=True, exist_ok=True)
        logger.info("datastore: images from %s, index and labels in %s", self.studies, state)
        return LocalDatastore(
            str(state),
            images_dir=os.path.realpath(self.studies),
            labels_dir="labels",
            extensions=list(IMAGE_PATTERNS),
            auto_reload=False,
            read_only=False,
        )

    def init_infers(self) -> dict[str, InferTask]:
        infers: dict[str, InferTask] = {
            LESION_MODEL: RadLASLesionInfer(self.lesion_spec, self.decoder, self.device),
            CLASSIFICATION_MODEL: RadLASClassificationInfer(self.classification_spec, self.decoder, self.device),
        }
        message, all_served = models_report({n: t.spec for n, t in infers.items()}, self.weights_origins)
        logger.log(logging.INFO if all_served else logging.WARNING, "%s", message)
        return infers

    def init_strategies(self) -> dict[str, Strategy]:
        return {"random": Random()}

    def init_trainers(self) -> dict[str, Any]:
        return {}

    def init_scoring_methods(self) -> dict[str, Any]:
        return {}

    def on_init_complete(self) -> None:
        """Start the decoder worker now (the first request would otherwise pay for its start)."""
        self.decoder.warm_up()
