"""The finetune_classification bundle through the real ``monai.bundle`` command line: train, evaluate, infer, DDP."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from bundle_runner import BUNDLES, REPO, bundle_command, isolated_env, run_bundle

pytestmark = pytest.mark.slow

CLASSES = ["Nodule", "Mass", "Consolidation", "Effusion", "Pneumothorax", "Cardiomegaly"]
TINY = {"image_size": 64, "synthetic_images": 24, "batch_size": 4, "val_batch_size": 4, "log_interval": 1}
#: the train StatsHandler's line: ``Epoch: 1/2, Iter: 1/4 -- train_loss: 1.3264``
LOSS_LINE = re.compile(r"Epoch: (\d+)/\d+, Iter: (\d+)/(\d+) -- train_loss: (\d+\.\d+)")


def _pretrain_checkpoint(root):
    """A tiny RadLAS pretrain checkpoint (model.pt + checkpoint_best.pt) and a pretrain MLflow run tagged with the
    digest of checkpoint_best.pt, as the pretrain bundle leaves them."""
    from radlas_monai.handlers.checkpoint_io import file_sha256
    from radlas_monai.handlers.mlflow_store import prepare_tracking_store
    from radlas_monai.networks import RadLAS

    folder = root / "pretrain_models"
    folder.mkdir()
    torch.manual_seed(0)
    state = RadLAS(preset="tiny", img_size=64).state_dict()
    torch.save(state, folder / "model.pt")
    torch.save({"network": state, "meta": {"epoch": 1}}, folder / "checkpoint_best.pt")
    import mlflow

    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    experiment = prepare_tracking_store(uri, "radlas")
    client = mlflow.MlflowClient(tracking_uri=uri)
    run = client.create_run(experiment, tags={"radlas.checkpoint_sha256": file_sha256(folder / "checkpoint_best.pt")})
    client.set_terminated(run.info.run_id, "FINISHED")
    return folder / "model.pt", run.info.run_id


def _train_overrides(ckpt, folder, epochs: int = 1, **extra) -> dict:
    """Tiny fine-tune overrides from ``ckpt``, writing under ``folder`` (eval/ and models/), validating every epoch."""
    return {
        **TINY,
        "max_epochs": epochs,
        "val_interval": 1,
        "pretrained_ckpt": ckpt,
        "output_dir": folder / "eval",
        "ckpt_dir": folder / "models",
        **extra,
    }


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """One seeded 2-epoch linear-probe run of train.json from a tiny pretrain checkpoint."""
    root = tmp_path_factory.mktemp("finetune")
    ckpt, pretrain_run = _pretrain_checkpoint(root)
    overrides = _train_overrides(ckpt, root, epochs=2)
    result = run_bundle(root, "finetune_classification", "train", overrides)
    return root, ckpt, pretrain_run, result


def _client(root):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")


def test_train_writes_a_classifier_checkpoint_with_pretrained_backbone(finetuned):
    root, ckpt, _, _ = finetuned
    from radlas_monai.networks.classifier import RadLASClassifier

    state = torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True)
    classifier = RadLASClassifier(CLASSES, img_size=64, from_scratch=True)
    classifier.load_state_dict(state)  # strict: the whole classifier
    pretrained = torch.load(ckpt, map_location="cpu", weights_only=True)
    changed = [k for k in pretrained if not torch.equal(state["backbone." + k], pretrained[k])]
    assert not changed, f"linear probe changed the pretrained backbone: {changed[:5]}"
    assert not torch.equal(state["head.weight"], torch.zeros_like(state["head.weight"]))


def test_train_run_is_tagged_with_lineage_and_metrics(finetuned):
    root, ckpt, pretrain_run, _ = finetuned
    from radlas_monai.handlers.checkpoint_io import file_sha256

    client = _client(root)
    runs = client.search_runs(
        [client.get_experiment_by_name("radlas").experiment_id], "tags.`radlas.bundle` = 'finetune_classification'"
    )
    (run,) = runs
    assert run.info.status == "FINISHED"
    assert run.data.tags["radlas.parent_run_id"] == pretrain_run
    assert run.data.tags["radlas.parent_checkpoint_sha256"] == file_sha256(ckpt)
    assert any("val_mean_auroc" in m for m in run.data.metrics), run.data.metrics
    assert run.data.params.get("finetune_mode") == "linear_probe"


def test_train_loss_is_logged_every_iteration_and_stored_in_mlflow(finetuned):
    """The StatsHandler prints the loss of every iteration (log_interval 1); the MLflow run holds the same values."""
    root, _, _, result = finetuned
    log = result.stdout + result.stderr
    assert "ignoring non-scalar output in StatsHandler" not in log
    logged = [float(value) for *_, value in LOSS_LINE.findall(log)]
    per_epoch = int(LOSS_LINE.search(log)[3]) if logged else 0
    assert per_epoch > 0 and len(logged) == 2 * per_epoch, log[-3000:]
    client = _client(root)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("radlas").experiment_id], "tags.`radlas.bundle` = 'finetune_classification'"
    )
    history = sorted(client.get_metric_history(run.info.run_id, "train/loss"), key=lambda m: m.step)
    assert [m.step for m in history] == list(range(1, len(logged) + 1))
    assert [m.value for m in history] == pytest.approx(logged, abs=5.1e-5)  # printed with 4 decimals


def test_train_with_monai_tracking_switch_logs_the_loss(finetuned, tmp_path):
    """MONAI's own ``--tracking mlflow`` adds its MLFlowHandler, which reads the loss as the StatsHandler does."""
    root, ckpt, _, _ = finetuned
    overrides = _train_overrides(ckpt, tmp_path, tracking="mlflow")
    result = run_bundle(tmp_path, "finetune_classification", "train", overrides)
    assert LOSS_LINE.search(result.stdout + result.stderr)
    client = _client(tmp_path)
    runs = client.search_runs([client.get_experiment_by_name("radlas").experiment_id])
    assert runs and all(run.info.status == "FINISHED" for run in runs)
    metrics = set().union(*(run.data.metrics for run in runs))
    assert {"train_loss", "train/loss"} <= metrics  # MONAI's MLFlowHandler and RadLAS's


def test_evaluate_writes_metrics_json_and_roc_plot(finetuned):
    root, _, _, _ = finetuned
    out = root / "evaluate"
    run_bundle(root, "finetune_classification", "evaluate", {**TINY, "ckpt_dir": root / "models", "output_dir": out})
    report = json.loads((out / "metrics.json").read_text())
    assert report["class_names"] == CLASSES and report["threshold_method"] == "youden"
    assert set(report["per_class"]) == set(CLASSES)
    defined = [v["auroc"] for v in report["per_class"].values() if v["auroc"] is not None]
    assert defined and all(0.0 <= a <= 1.0 for a in defined)
    assert report["mean"]["auroc"] == pytest.approx(np.mean(defined))
    assert 0.0 <= report["ece"] <= 1.0
    for stats in report["per_class"].values():
        assert stats["threshold_source"] in ("validation", "default")
        assert stats["sensitivity"] is None or 0.0 <= stats["sensitivity"] <= 1.0
    from PIL import Image

    assert Image.open(out / "roc.png").size[0] > 100
    client = _client(root)
    runs = client.search_runs(
        [client.get_experiment_by_name("radlas").experiment_id], "tags.`radlas.bundle` = 'finetune_classification'"
    )
    runs = [r for r in runs if "eval/test_mean_auroc" in r.data.metrics]
    assert len(runs) == 1, "the evaluation run logged no test_mean_auroc"
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id, "evaluation")}
    assert {"evaluation/metrics.json", "evaluation/roc.png"} <= artifacts
    train_runs = client.search_runs([runs[0].info.experiment_id], "tags.`radlas.bundle` = 'finetune_classification'")
    train_run = [r for r in train_runs if any("val_mean_auroc" in m for m in r.data.metrics)]
    assert (
        runs[0].data.tags.get("radlas.parent_run_id") == train_run[0].info.run_id
    )  # lineage: evaluation -> fine-tuning
    # by hash: the fine-tune run's digest is that of the model.pt the evaluation loaded
    assert runs[0].data.tags["radlas.parent_checkpoint_sha256"] == train_run[0].data.tags["radlas.checkpoint_sha256"]


def test_inference_writes_probabilities_and_evidence_overlays(finetuned, tmp_path):
    root, _, _, _ = finetuned
    from radlas_monai.data.writers import write_dicom, write_png

    inputs = tmp_path / "inputs"
    rng = np.random.default_rng(0)
    write_dicom(
        (rng.random((80, 70)) * 4000).astype(np.uint16),
        inputs / "DOE_JOHN.dcm",
        spacing=(0.2, 0.3),
        patient={"PatientName": "Doe^John", "PatientID": "12345"},
    )
    write_png((rng.random((60, 90)) * 255).astype(np.uint8), inputs / "chest.png")
    out = tmp_path / "predictions"
    overrides = {"image_size": 64, "ckpt_dir": root / "models", "dataset_dir": inputs, "output_dir": out, "top_k": 2}
    run_bundle(root, "finetune_classification", "inference", overrides)
    index = json.loads((out / "predictions.json").read_text())
    assert index["class_names"] == CLASSES and len(index["predictions"]) == 2
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and list(rows[0])[1:-1] == CLASSES
    from PIL import Image

    for record in index["predictions"]:
        probabilities = record["probabilities"]
        assert all(0.0 <= p <= 1.0 for p in probabilities.values())
        top = record["top_findings"]
        assert [t["finding"] for t in top] == sorted(probabilities, key=lambda n: -probabilities[n])[:2]
        for finding in top:
            assert finding["evidence"] == f"{record['image_id']}_{finding['finding']}_evidence.png"
            overlay = Image.open(out / finding["evidence"])
            assert overlay.size == (record["shape"][1], record["shape"][0])  # the input's own geometry
    names = " ".join(p.name for p in out.iterdir()) + (out / "predictions.json").read_text()
    assert "DOE" not in names and "12345" not in names and "chest" not in names


def test_missing_pretrain_checkpoint_fails_fast_naming_path_and_command(tmp_path):
    missing = tmp_path / "nowhere" / "model.pt"
    command = bundle_command(
        "finetune_classification",
        "train",
        {**TINY, "pretrained_ckpt": missing, "output_dir": tmp_path / "eval", "ckpt_dir": tmp_path / "m"},
    )
    result = subprocess.run(command, cwd=REPO, env=isolated_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert str(missing) in text and "bundles/pretrain/configs/train.json" in text
    assert not (tmp_path / "synthetic").exists(), "data was prepared before the checkpoint check"


def test_metadata_and_network_io(tmp_path):
    meta = BUNDLES / "finetune_classification" / "configs" / "metadata.json"
    pred = json.loads(meta.read_text())["network_data_format"]["outputs"]["pred"]
    assert pred["channel_def"] == {str(i): n for i, n in enumerate(CLASSES)}
    schema = REPO.parent / "shared" / "monai" / "meta_schema_20240725.json"
    if schema.is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "monai.bundle",
                "verify_metadata",
                "--meta_file",
                str(meta),
                "--filepath",
                str(schema),
            ],
            check=True,
            cwd=tmp_path,
            capture_output=True,
        )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "verify_net_in_out",
            "--net_id",
            "network_def",
            "--meta_file",
            str(meta),
            "--config_file",
            str(BUNDLES / "finetune_classification" / "configs" / "inference.json"),
        ],
        check=True,
        cwd=tmp_path,
        capture_output=True,
        env=isolated_env(tmp_path),
    )


def test_two_process_ddp_on_cpu(finetuned, tmp_path):
    root, ckpt, _, _ = finetuned
    # --standalone: torchrun's own rendezvous store on a port the OS assigns it (no free-port probe to race)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
    overrides = _train_overrides(ckpt, tmp_path)
    # one thread per rank: two ranks on a 2-core machine
    run_bundle(
        tmp_path, "finetune_classification", ["train", "multi_gpu_train"], overrides, launcher=launcher, threads=1
    )
    assert torch.load(tmp_path / "models" / "model.pt", map_location="cpu", weights_only=True)
    client = _client(tmp_path)
    runs = client.search_runs([client.get_experiment_by_name("radlas").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
