"""Tests for radlas_monai.handlers.config_params: config -> MLflow params, config hash."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from radlas_monai.handlers.config_params import config_hash, flatten_params, load_config, sanitize_key

# [config, kwargs, expected params]
FLATTEN_CASES = [
    [{"a": 1, "b": {"c": "x", "d": [1, 2]}}, {}, {"a": "1", "b.c": "x", "b.d": "[1, 2]"}],
    [
        {"train": {"handlers": [{"_target_": "StatsHandler"}, {"_target_": "ValidationHandler", "interval": 2}]}},
        {},
        {
            "train.handlers.0._target_": "StatsHandler",
            "train.handlers.1._target_": "ValidationHandler",
            "train.handlers.1.interval": "2",
        },
    ],
    [
        {"lr": 1e-4, "amp": True, "none": None, "empty": {}},
        {},
        {"lr": "0.0001", "amp": "true", "none": "null", "empty": "{}"},
    ],
    [{"expr": "$@network_def.to(@device)"}, {}, {"expr": "$@network_def.to(@device)"}],
]


@pytest.mark.parametrize("config, kwargs, expected", FLATTEN_CASES)
def test_flatten(config, kwargs, expected) -> None:
    assert flatten_params(config, **kwargs) == expected


def test_long_values_truncated_to_limit() -> None:
    params = flatten_params({"long": "x" * 5000, "short": "y"}, max_value_length=500)
    assert len(params["long"]) == 500 and params["long"].endswith("...[5000 chars]")
    assert params["short"] == "y"


def test_param_count_capped_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    config = {f"p{i:04d}": i for i in range(1500)}
    with caplog.at_level(logging.WARNING, logger="radlas_monai.handlers.config_params"):
        params = flatten_params(config, max_params=1000)
    assert list(params) == [f"p{i:04d}" for i in range(1000)]
    assert len([r for r in caplog.records if "1500 params" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    "key, expected",
    [
        ["train#handlers", "train_handlers"],
        ["AUROC(Nodule)", "AUROC_Nodule_"],
        ["/a//b/./c/", "a/b/c"],
        ["ok key-1.x", "ok key-1.x"],
    ],
)
def test_sanitize_key(key: str, expected: str) -> None:
    assert sanitize_key(key) == expected


def test_sanitize_long_key_unique() -> None:
    a, b = sanitize_key("k" * 300 + "a"), sanitize_key("k" * 300 + "b")
    assert len(a) <= 250 and len(b) <= 250 and a != b


def test_bad_limits_raise() -> None:
    with pytest.raises(ValueError, match="max_value_length"):
        flatten_params({"a": 1}, max_value_length=3)


def test_config_hash_ignores_formatting_and_key_order(tmp_path: Path) -> None:
    config = {"network": {"dim": 64, "depth": 2}, "lr": 0.001}
    json_file = tmp_path / "train.json"
    json_file.write_text(json.dumps(config, indent=4))
    yaml_file = tmp_path / "train.yaml"
    yaml_file.write_text("lr: 0.001\nnetwork:\n  depth: 2\n  dim: 64\n")
    reference = config_hash({"lr": 0.001, "network": {"depth": 2, "dim": 64}})
    assert config_hash(json_file) == config_hash(yaml_file) == config_hash(config) == reference
    assert config_hash({**config, "lr": 0.002}) != reference
    assert len(reference) == 64


def test_load_config_merges_files_in_order(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"x": 1, "y": 1}))
    (tmp_path / "b.json").write_text(json.dumps({"y": 2}))
    merged, files = load_config([tmp_path / "a.json", tmp_path / "b.json"])
    assert merged == {"x": 1, "y": 2} and files == [tmp_path / "a.json", tmp_path / "b.json"]


def test_load_config_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_config(tmp_path / "missing.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="mapping"):
        load_config(tmp_path / "list.json")
