"""The adapter registry and the ``scripts/build_datalist.py`` fire entry point."""

from __future__ import annotations

import importlib.util
import inspect
import json
from pathlib import Path

import fire
import numpy as np
import pytest

from radlas_monai.data.adapters import ADAPTERS
from radlas_monai.data.datalist import load_datalist
from radlas_monai.data.writers import write_png

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_datalist.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("build_datalist_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_registry() -> None:
    assert sorted(ADAPTERS) == ["chestxray14", "chexpert", "jsrt", "jsrt_nodule", "mimic_cxr", "rsna_pneumonia",
                                "siim_acr", "vindr_cxr"]  # fmt: skip
    for name, builder in ADAPTERS.items():
        assert list(inspect.signature(builder).parameters)[0] == "root", name
        assert builder.__doc__ and builder.__module__.startswith("radlas_monai.data.adapters."), name


def test_every_adapter_is_a_sub_command(script) -> None:
    commands = script.commands()
    assert set(commands) == {"folder", "csv", *ADAPTERS}
    siim = inspect.signature(commands["siim_acr"])
    assert list(siim.parameters)[:2] == ["root", "output_dir"] and "output" in siim.parameters


def test_folder_command(script, tmp_path: Path) -> None:
    for k in range(4):
        write_png(np.zeros((4, 4), np.uint8), tmp_path / "data" / f"patient{k}" / "a.png")
    out = tmp_path / "lists" / "folder.json"
    result = fire.Fire(script.commands(), command=["folder", str(tmp_path / "data"), "--output", str(out),
                                                   "--split", "[0.5,0.5,0.0]"])  # fmt: skip
    assert result == str(out)
    items = load_datalist(out, "training") + load_datalist(out, "validation")
    assert len(items) == 4 and all(Path(i["image"]).is_file() for i in items)


def test_adapter_and_csv_commands(script, tmp_path: Path) -> None:
    root = tmp_path / "jsrt_nodule"
    header = "image,study_id,label,cx,cy,radius,width"
    rows = ["images/JPCLN001.png,JPCLN001,1,10,12,3,512", "images/JPCNN001.png,JPCNN001,0,,,,512",
            "images/JPCNN002.png,JPCNN002,0,,,,512"]  # fmt: skip
    root.mkdir()
    (root / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    for row in rows:
        write_png(np.zeros((4, 4), np.uint8), root / row.split(",")[0])
    out = fire.Fire(script.commands(), command=["jsrt_nodule", str(root), "--fold", "0", "--num_folds", "3",
                                                "--output", str(tmp_path / "j.json")])  # fmt: skip
    data = json.loads(Path(out).read_text())
    assert data["name"] == "JSRT nodule" and len(data["validation"]) == 1 and len(data["training"]) == 2
    assert data["training"][0]["image"].startswith("jsrt_nodule/images/")  # rebased to the JSON's folder
    command = ["csv", str(root / "labels.csv"), "--label_columns", "[label]", "--patient_column", "study_id"]
    default = fire.Fire(script.commands(), command=command)
    assert Path(default) == root / "labels.datalist.json"
    items = [i for split in ("training", "validation", "test") for i in load_datalist(default, split)]
    assert {i["patient"] for i in items} == {"JPCLN001", "JPCNN001", "JPCNN002"}
