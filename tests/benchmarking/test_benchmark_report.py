"""Tests of radlas_monai.benchmarking.report: tables and the JSON report."""

from __future__ import annotations

import json

from radlas_monai.benchmarking.report import finish_section, format_table


def test_format_table_columns_and_formats():
    rows = [{"name": "a", "value": 12.345, "range": [1.0, 2.5], "skip": 1}, {"name": "b", "value": 0.5, "range": None}]
    lines = format_table("title", rows, columns=["name", "value", "range"]).splitlines()
    assert lines[0] == "title"
    assert lines[1].split() == ["name", "value", "range"]
    assert lines[2].split() == ["a", "12.3", "1-2.5"]
    assert lines[3].split() == ["b", "0.5", "-"]
    assert format_table("empty", []) == ""


def test_finish_section_keeps_other_sections(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"other": {"kept": True}}))
    shown = []
    section = finish_section("mine", "my table", {"device": "cpu"}, [{"x": 1.0}], path, echo=shown.append)
    report = json.loads(path.read_text())
    assert report["other"] == {"kept": True}
    assert report["mine"] == section and section["results"] == [{"x": 1.0}] and section["device"] == "cpu"
    assert report["environment"]["torch"]
    assert len(shown) == 1 and "my table" in shown[0]
