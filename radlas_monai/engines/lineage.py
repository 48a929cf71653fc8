"""MLflow lineage of a downstream run: which checkpoint it started from, and which run produced that checkpoint.

A RadLAS training run tags itself with ``radlas.checkpoint_sha256`` = the SHA-256 of the weights file that downstream
bundles load, ``models/model.pt`` (:class:`~radlas_monai.handlers.tracking.RadLASMLFlowHandler`, its
``weights_path``). A downstream run (fine-tuning from the pretrain ``model.pt``, evaluating a fine-tuned ``model.pt``)
tags itself with:

- ``radlas.parent_checkpoint_sha256``: the SHA-256 of the file it loaded (:data:`TAG_PARENT_CHECKPOINT_SHA256`), the
  same value as its parent's ``radlas.checkpoint_sha256``;
- ``radlas.parent_run_id``: the run that wrote it, found by :func:`find_parent_run_id` in the same store.

Runs recorded before the tag named ``model.pt`` hashed ``checkpoint_best.pt``, which holds the same network but not
the same bytes; for them the lookup also tries the digests of the loaded file's sibling ``checkpoint_*.pt`` files
whose ``network`` equals the loaded weights tensor for tensor.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

__all__ = ["TAG_PARENT_CHECKPOINT_SHA256", "checkpoint_digests", "find_parent_run_id", "lineage_tags"]

logger = logging.getLogger(__name__)

TAG_PARENT_CHECKPOINT_SHA256 = "radlas.parent_checkpoint_sha256"


def _network(path: Path) -> dict:
    from radlas_monai.handlers.checkpoint_io import load_checkpoint

    checkpoint = load_checkpoint(path)
    return checkpoint["network"] if isinstance(checkpoint.get("network"), dict) else checkpoint


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        isinstance(a[k], torch.Tensor) and isinstance(b[k], torch.Tensor) and torch.equal(a[k], b[k]) for k in a
    )


def checkpoint_digests(path: str | os.PathLike) -> list[str]:
    """SHA-256 digests under which the run that wrote ``path`` may have tagged it.

    Args:
        path: the loaded checkpoint.

    Returns:
        The file's own digest, then those of sibling ``checkpoint_*.pt`` files holding the same network weights.
    """
    from radlas_monai.handlers.checkpoint_io import CheckpointError, file_sha256

    path = Path(path)
    digests = [file_sha256(path)]
    try:
        weights = _network(path)
        for sibling in sorted(path.parent.glob("checkpoint_*.pt")):
            if sibling.resolve() != path.resolve() and _same_weights(weights, _network(sibling)):
                digests.append(file_sha256(sibling))
    except CheckpointError as err:  # an unreadable sibling only costs the lookup
        logger.info("lineage: %s", err)
    return digests


def find_parent_run_id(checkpoint: str | os.PathLike | None, tracking_uri: str | None = None) -> str | None:
    """The MLflow run that wrote ``checkpoint``, looked up by its ``radlas.checkpoint_sha256`` tag.

    Args:
        checkpoint: the loaded checkpoint file (None/missing: no lineage).
        tracking_uri: the store (``None``: ``MLFLOW_TRACKING_URI`` or the RadLAS default).

    Returns:
        The most recent matching run id, or None (not found, store unreachable: logged, never raised).
    """
    if not checkpoint or not Path(checkpoint).is_file():
        return None
    try:
        from mlflow import MlflowClient

        from radlas_monai.handlers.mlflow_store import resolve_tracking_uri, sqlite_db_path
        from radlas_monai.handlers.tracking import TAG_CHECKPOINT_SHA256

        uri = resolve_tracking_uri(tracking_uri)
        database = sqlite_db_path(uri)
        if database is not None and not database.is_file():  # no store yet: nothing to find, and nothing created
            logger.info("lineage: no MLflow store at %s yet", uri)
            return None
        client = MlflowClient(tracking_uri=uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        for digest in checkpoint_digests(checkpoint):
            runs = client.search_runs(
                experiments,
                filter_string=f"tags.`{TAG_CHECKPOINT_SHA256}` = '{digest}'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
            if runs:
                logger.info("lineage: %s was written by MLflow run %s", checkpoint, runs[0].info.run_id)
                return runs[0].info.run_id
    except Exception as err:  # noqa: BLE001 - lineage is best effort, a tracking problem never stops a run
        logger.warning("lineage: could not look up the run that wrote %s (%s: %s)", checkpoint, type(err).__name__, err)
        return None
    logger.info("lineage: no MLflow run in the store is tagged with the digest of %s", checkpoint)
    return None


def lineage_tags(checkpoint: str | os.PathLike | None) -> dict[str, str]:
    """``{"radlas.parent_checkpoint_sha256": <digest of checkpoint>}`` (empty when there is no file)."""
    from radlas_monai.handlers.checkpoint_io import file_sha256

    if not checkpoint or not Path(checkpoint).is_file():
        return {}
    return {TAG_PARENT_CHECKPOINT_SHA256: file_sha256(checkpoint)}
