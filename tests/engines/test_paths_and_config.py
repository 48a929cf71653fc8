"""Bundle-root lookup and the executed config recorded by tracking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radlas_monai.engines.executed_config import command_line_overrides, executed_config
from radlas_monai.engines.paths import find_bundle_root

REPO = Path(__file__).resolve().parents[2]
BUNDLE_ARGV0 = "/env/lib/python3.11/site-packages/monai/bundle/__main__.py"


@pytest.mark.parametrize(
    "cwd", [REPO, REPO / "bundles" / "pretrain", REPO / "bundles" / "pretrain" / "configs", Path("/")]
)
def test_find_bundle_root_from_anywhere(cwd):
    assert Path(find_bundle_root("pretrain", cwd=cwd)) == REPO / "bundles" / "pretrain"


def test_find_bundle_root_names_the_candidates():
    with pytest.raises(FileNotFoundError, match="no_such_bundle.*--bundle_root"):
        find_bundle_root("no_such_bundle", cwd=REPO)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            [BUNDLE_ARGV0, "run", "--config_file", "x.json", "--max_epochs", "3", "--amp=True"],
            {"max_epochs": 3, "amp": True},
        ),
        (
            [BUNDLE_ARGV0, "run", "--tracking", "mlflow", "--train#trainer#max_epochs", "2"],
            {"train#trainer#max_epochs": 2},
        ),
        ([BUNDLE_ARGV0, "run", "--dataset_dir", "/data/x", "--resume"], {"dataset_dir": "/data/x", "resume": True}),
        ([BUNDLE_ARGV0, "run", "--amp", "false"], {"amp": "false"}),  # fire's rule: only False is a boolean
        (["/usr/bin/pytest", "--max_epochs", "3"], {}),
    ],
)
def test_command_line_overrides(argv, expected):
    assert command_line_overrides(argv) == expected


def test_executed_config_applies_overrides(tmp_path):
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"max_epochs": 8, "train": {"batch": "@max_epochs"}}))
    content = executed_config(config, argv=[BUNDLE_ARGV0, "run", "--config_file", str(config), "--max_epochs", "2"])
    assert content == {"max_epochs": 2, "train": {"batch": "@max_epochs"}}
    assert executed_config(config, argv=["python"])["max_epochs"] == 8
