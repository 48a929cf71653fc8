from __future__ import annotations

import pytest

from radlas_monai.label.params import (
    CLASSIFICATION_PARAMS,
    LESION_PARAMS,
    RequestParamError,
    find_unsafe,
    parse_params,
    validate_params,
)

VALID = [
    [{}, {}],
    [{"method": "fixed", "threshold": 0.25}, {"method": "fixed", "threshold": 0.25}],
    [{"method": "percentile", "percentile": 99}, {"method": "percentile", "percentile": 99.0}],
    [{"min_area": 8.0, "max_boxes": 3}, {"min_area": 8, "max_boxes": 3}],
    [{"label": "heatmap", "result_extension": ".nii.gz"}, {"label": "heatmap", "result_extension": ".nii.gz"}],
    [{"result_compress": False, "label_info": [{"name": "lesion", "idx": 1}]}, {}],  # viewer keys: checked, dropped
    [{"client_id": None, "method": "otsu"}, {"method": "otsu"}],  # MONAILabelClient's key: checked, dropped
    [{"client_id": "slicer-7f3a"}, {}],
]

INVALID = [
    [{"method": "$__import__('os').system('id')"}, "starts with '$'"],
    [{"method": "@network_def"}, "starts with '@'"],
    [{"label_info": [{"_target_": "os.system", "command": "id"}]}, "_target_"],
    [{"label_info": {"x": " %macro"}}, "starts with '%'"],
    [{"image": "/etc/passwd"}, "not accepted"],
    [{"model_filename": "other.pt"}, "not accepted"],
    [{"device": "cuda"}, "not accepted"],
    [{"threshold": 1.5}, "must be in [0.0, 1.0]"],
    [{"threshold": "0.5"}, "must be a number"],
    [{"threshold": True}, "must be a number"],
    [{"threshold": float("nan")}, "must be in"],
    [{"min_area": 2.5}, "must be an integer"],
    [{"method": "median"}, "must be one of"],
    [{"result_compress": "yes"}, "true or false"],
    [{"client_id": 7}, "'client_id': must be text or null, got int"],
    [{"client_id": "a\nb"}, "no control characters"],
    [{"client_id": "x" * 257}, "must be at most 256 characters, got 257"],
    [{"client_id": "@network_def"}, "starts with '@'"],
]


@pytest.mark.parametrize("params, expected", VALID)
def test_valid_params_are_converted(params, expected):
    assert validate_params(params, LESION_PARAMS) == expected


@pytest.mark.parametrize("params, message", INVALID)
def test_invalid_params_are_rejected(params, message):
    with pytest.raises(RequestParamError, match=message.replace("[", r"\[").replace("$", r"\$")):
        validate_params(params, LESION_PARAMS)


def test_classification_accepts_the_client_keys_only():
    assert validate_params({"client_id": None, "label_info": []}, CLASSIFICATION_PARAMS) == {}


def test_classification_accepts_no_lesion_params():
    with pytest.raises(RequestParamError, match="'threshold'"):
        validate_params({"threshold": 0.5}, CLASSIFICATION_PARAMS)


@pytest.mark.parametrize(
    "text, expected",
    [
        [None, {}],
        ["", {}],
        ["  ", {}],
        ['{"method": "otsu"}', {"method": "otsu"}],
        [b'{"max_boxes": 2}', {"max_boxes": 2}],
    ],
)
def test_parse_params(text, expected):
    assert parse_params(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [["{", "not valid JSON"], ["[1]", "JSON object"], ['{"a": "$x"}', r"\$"], ["x" * 20000, "longer than"]],
)
def test_parse_params_rejects(text, message):
    with pytest.raises(RequestParamError, match=message):
        parse_params(text)


def test_find_unsafe_depth_and_plain_values():
    assert find_unsafe({"a": [1, 2.0, "text", {"b": None}]}) is None
    assert "nested" in find_unsafe({"a": [[[[["deep"]]]]]})
    assert "key" in find_unsafe({"$expr": 1})


def test_error_json_names_the_parameter():
    err = RequestParamError("threshold", "must be in [0, 1], got 2")
    assert err.to_json()["parameter"] == "threshold" and "threshold" in err.to_json()["detail"]
