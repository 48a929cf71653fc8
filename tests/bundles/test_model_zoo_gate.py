"""MONAI Model Zoo quality gate, run on every bundle under ``bundles/`` (and on the three the product promises).

Checks, per bundle: metadata validates against the zoo schema (offline, against the copy in ``tests/testdata``),
``version`` heads the changelog, the recorded package versions are the pinned ones, the configs build as
MONAI workflows whose ``check_properties()`` finds nothing missing (without training or downloading), the inference
network passes ``verify_net_in_out``, the zoo layout (LICENSE, docs, no file over 1 MB, no weights committed), the
README follows the zoo template, and JSON configs are pretty-printed (4-space indent, key order kept).

Version policy: ``metadata.json`` records the exact versions the bundle was verified with (what zoo reviewers
expect), and those are the versions of the project's lock file ``requirements/constraints.txt``, the stack every
install command uses and the suite passed with. The gate compares metadata with that file, never with whatever
PyPI released last (a new release of an unpinned dependency once broke every fresh CI run).
``scripts/update_pins.sh`` moves the pins forward and rewrites metadata in one command.
"""

from __future__ import annotations

import configparser
import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import torch
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
BUNDLES_DIR = REPO / "bundles"
SCHEMA_NAME = "meta_schema_20240725.json"
SCHEMA = REPO / "tests" / "testdata" / SCHEMA_NAME
SCHEMA_MD5 = "06954cad2cc5d3784e72077ac76f0fc8"
MAX_FILE_BYTES = 1 << 20
WEIGHT_SUFFIXES = {".pt", ".pth", ".ckpt", ".ts", ".onnx", ".safetensors", ".bin", ".h5", ".engine"}
#: the configs each promised bundle must ship; any other bundle needs at least an inference config
EXPECTED_CONFIGS = {
    "pretrain": ("train", "evaluate", "inference", "multi_gpu_train"),
    "finetune_classification": ("train", "evaluate", "inference", "multi_gpu_train"),
    "lesion_localization": ("evaluate", "inference"),
}
DEFAULT_CONFIGS = ("inference",)
WORKFLOW_TYPES = {"train": "train", "evaluate": "eval", "inference": "infer"}
#: metadata keys of the packages it records besides ``required_packages_version``
TOP_LEVEL_PACKAGES = {"monai_version": "monai", "pytorch_version": "torch", "numpy_version": "numpy"}
UPDATE_COMMAND = "python scripts/update_bundle_metadata.py (or bash scripts/update_pins.sh)"
#: tiny sizes for workflow construction: nothing is trained, but datasets and networks are built
TINY_SIZE = 64


def discovered_bundles() -> list[str]:
    """Every folder under ``bundles/`` (a folder without ``configs/`` fails the layout checks)."""
    if not BUNDLES_DIR.is_dir():
        return []
    return sorted(p.name for p in BUNDLES_DIR.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


BUNDLES = sorted(set(EXPECTED_CONFIGS) | set(discovered_bundles()))


def expected_configs(bundle: str) -> tuple[str, ...]:
    return EXPECTED_CONFIGS.get(bundle, DEFAULT_CONFIGS)


def bundle_configs(bundle: str) -> list[str]:
    """Configs the bundle must have, plus those it has."""
    present = {p.stem for p in (BUNDLES_DIR / bundle / "configs").glob("*.json")}
    return sorted(set(expected_configs(bundle)) | present)


WORKFLOW_CASES = [(b, c) for b in BUNDLES for c in WORKFLOW_TYPES if c in bundle_configs(b)]


def config_file(bundle: str, name: str) -> Path:
    """``bundles/<bundle>/configs/<name>.json``; fails naming the file when it is missing."""
    path = BUNDLES_DIR / bundle / "configs" / f"{name}.json"
    assert path.is_file(), f"{path.relative_to(REPO)} is missing"
    return path


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise AssertionError(f"{path.relative_to(REPO)} is not valid JSON: {err}") from None


def load_metadata(bundle: str) -> dict[str, Any]:
    return read_json(config_file(bundle, "metadata"))


def load_script(name: str):
    """A module from ``scripts/`` (not a package), imported by path."""
    module_name = f"_radlas_script_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, REPO / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


# ---------------------------------------------------------------------------------------------------------------
# tiny checkpoints and data shared by the workflow, network and export checks


def parse_config_item(config_path: Path, item_id: str, overrides: Mapping[str, Any]) -> Any:
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(f=str(config_path))
    parser.update(pairs=dict(overrides))
    return parser.get_parsed_content(item_id)


class CheckpointFactory:
    """Tiny checkpoints written once per (bundle, size): a RadLAS pretrain state dict, and for a bundle with a
    ``train.json`` the state dict of its ``network_def`` (the Model Zoo ``models/model.pt``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: dict[tuple[str, int], Path] = {}

    def pretrain(self, size: int) -> Path:
        key = ("<pretrain>", size)
        if key not in self.made:
            from radlas_monai.networks import RadLAS

            path = self.folder / f"radlas_tiny_{size}.pt"
            torch.save(RadLAS(preset="tiny", img_size=size).state_dict(), path)
            self.made[key] = path
        return self.made[key]

    def bundle(self, bundle: str, size: int) -> Path:
        """The checkpoint a bundle's evaluate / inference configs load as ``ckpt_path``."""
        train = BUNDLES_DIR / bundle / "configs" / "train.json"
        if not train.is_file() or "network_def" not in read_json(train):
            return self.pretrain(size)  # e.g. lesion_localization reads the pretrain checkpoint
        key = (bundle, size)
        if key not in self.made:
            overrides = {"image_size": size, "pretrained_ckpt": str(self.pretrain(size))}
            network = parse_config_item(train, "network_def", present_overrides(read_json(train), overrides))
            path = self.folder / f"{bundle}_tiny_{size}.pt"
            torch.save(network.state_dict(), path)
            self.made[key] = path
        return self.made[key]


def present_overrides(config: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides whose IDs the config has (nothing new is added to a config)."""
    return {k: v for k, v in overrides.items() if k in config}


@pytest.fixture(scope="module")
def gate_root(tmp_path_factory) -> Iterator[Path]:
    """A scratch folder that also holds the MLflow store and synthetic-data cache any config might touch."""
    root = tmp_path_factory.mktemp("zoo_gate")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RADLAS_DATA_DIR", str(root / "synthetic"))
        patch.setenv("RADLAS_MLFLOW_DIR", str(root / "mlruns"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield root


@pytest.fixture(scope="module")
def checkpoints(gate_root) -> CheckpointFactory:
    folder = gate_root / "checkpoints"
    folder.mkdir()
    return CheckpointFactory(folder)


@pytest.fixture(scope="module")
def tiny_datalist(gate_root) -> str:
    """The embedded synthetic dataset at 64 px (12 images): what every bundle reads by default, only smaller."""
    from radlas_monai.data.synthetic import ensure_synthetic_dataset

    return str(ensure_synthetic_dataset(root=gate_root / "synthetic", num_images=12, image_size=TINY_SIZE, seed=0))


# ---------------------------------------------------------------------------------------------------------------
# metadata


def test_schema_copy_is_the_schema_metadata_names():
    assert hashlib.md5(SCHEMA.read_bytes()).hexdigest() == SCHEMA_MD5, f"{SCHEMA} is not {SCHEMA_NAME}"


def _verify_metadata(meta_file: Path) -> None:
    assert importlib.util.find_spec("jsonschema"), "monai.bundle verify_metadata needs jsonschema (the dev extra)"
    from monai.bundle import verify_metadata

    # offline: the schema file exists with the right md5, so MONAI checks the hash instead of downloading
    verify_metadata(meta_file=str(meta_file), filepath=str(SCHEMA), hash_val=SCHEMA_MD5, create_dir=False)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_metadata_validates_against_the_zoo_schema(bundle):
    meta = load_metadata(bundle)
    assert str(meta.get("schema", "")).endswith("/" + SCHEMA_NAME), f"{bundle}: schema must name {SCHEMA_NAME}"
    _verify_metadata(config_file(bundle, "metadata"))


@pytest.mark.parametrize("missing", ["network_data_format", "numpy_version"])
def test_schema_check_rejects_incomplete_metadata(tmp_path, missing):
    meta = load_metadata("pretrain")
    del meta[missing]
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=missing):
        _verify_metadata(path)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_version_heads_the_changelog(bundle):
    meta = load_metadata(bundle)
    changelog = meta.get("changelog", {})
    assert meta["version"] in changelog, f"{bundle}: version {meta['version']} has no changelog entry"
    assert next(iter(changelog)) == meta["version"], f"{bundle}: the newest changelog entry must come first"
    assert all(Version(v) for v in changelog), f"{bundle}: changelog keys must be versions"


def pinned_versions() -> dict[str, str]:
    return load_script("update_bundle_metadata").pinned_versions()


def metadata_version_problems(bundle: str, meta: Mapping[str, Any], pins: Mapping[str, str]) -> list[str]:
    """Every version field of ``meta`` that is not exactly the pinned version (one line each)."""
    where = f"bundles/{bundle}/configs/metadata.json"
    recorded = {key: (dist, meta.get(key)) for key, dist in TOP_LEVEL_PACKAGES.items()}
    for dist, version in meta.get("required_packages_version", {}).items():
        recorded[f"required_packages_version.{dist}"] = (dist, version)
    problems = []
    for key, (dist, version) in recorded.items():
        pinned = pins.get(canonicalize_name(dist))
        if pinned is None:
            problems.append(f"{where} {key}: {dist} is not pinned in requirements/constraints.txt")
        elif str(version) != pinned:
            problems.append(f"{where} {key} records {version}, requirements/constraints.txt pins {pinned}")
    return problems


@pytest.mark.parametrize("bundle", BUNDLES)
def test_metadata_versions_are_the_pinned_versions(bundle):
    problems = metadata_version_problems(bundle, load_metadata(bundle), pinned_versions())
    assert not problems, "\n".join(problems) + f"\nupdate them with: {UPDATE_COMMAND}"


@pytest.mark.parametrize(
    "meta_patch, expected",
    [
        [{}, []],
        [{"numpy_version": "0.0.1"}, ["numpy_version records 0.0.1"]],
        [{"required_packages_version": {"mlflow": "9.9.9"}}, ["required_packages_version.mlflow records 9.9.9"]],
        [{"required_packages_version": {"not-a-package": "1.0.0"}}, ["not-a-package is not pinned"]],
    ],
)
def test_metadata_version_problems_name_each_mismatch(meta_patch, expected):
    pins = {"monai": "1.6.1", "torch": "2.13.0", "numpy": "1.26.4", "mlflow": "3.18.0"}
    meta = {"monai_version": "1.6.1", "pytorch_version": "2.13.0", "numpy_version": "1.26.4"}
    meta["required_packages_version"] = {"mlflow": "3.18.0"}
    meta.update(meta_patch)
    problems = metadata_version_problems("b", meta, pins)
    assert len(problems) == len(expected) and all(e in p for e, p in zip(expected, problems))


def test_lock_file_pins_everything_exactly_and_the_caps_hold():
    pins = pinned_versions()
    for name in ("monai", "torch", "numpy", "pydicom", "mlflow", "monailabel", "pytorch-ignite", "pytest"):
        assert re.fullmatch(r"\d+(\.\d+)+", pins[name]), f"{name} pinned as {pins.get(name)!r}"
    caps = (REPO / "requirements" / "constraints.in").read_text().splitlines()
    for line in (c.split("#", 1)[0].strip() for c in caps):
        if line:
            requirement = Requirement(line)
            pinned = pins[canonicalize_name(requirement.name)]
            assert Version(pinned) in requirement.specifier, f"constraints.txt pins {pinned}, outside the cap {line}"
    assert not any(name.startswith("nvidia-") or name in ("triton", "torchvision") for name in pins)


def test_pinned_versions_refuse_ranges(tmp_path):
    updater = load_script("update_bundle_metadata")
    good = tmp_path / "good.txt"
    good.write_text("# header\nMONAI==1.6.1  # comment\ntorch==2.13.0+cpu\n\n")
    pins = updater.pinned_versions(good)
    assert pins["monai"] == "1.6.1" and pins["torch"] == "2.13.0" and pins["radlas-monai"] == updater.project_version()
    bad = tmp_path / "bad.txt"
    bad.write_text("monai>=1.5\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        updater.pinned_versions(bad)


def config_modules(config: Any) -> set[str]:
    """Top-level modules a config imports (``$import x``, ``$from x import``) or instantiates (``_target_``)."""
    found: set[str] = set()
    if isinstance(config, Mapping):
        target = config.get("_target_")
        if isinstance(target, str) and "." in target:
            found.add(target.split(".", 1)[0])
        for value in config.values():
            found |= config_modules(value)
    elif isinstance(config, list):
        for value in config:
            found |= config_modules(value)
    elif isinstance(config, str):
        match = re.match(r"\$\s*(?:import|from)\s+([A-Za-z_]\w*)", config)
        if match:
            found.add(match.group(1))
    return found


@pytest.mark.parametrize("bundle", BUNDLES)
def test_required_packages_name_what_the_configs_import(bundle):
    meta = load_metadata(bundle)
    listed = {canonicalize_name(name) for name in meta.get("required_packages_version", {})}
    owners = metadata.packages_distributions()
    covered = {"monai", "torch", "numpy"}  # recorded in their own keys
    modules = set()
    for path in sorted((BUNDLES_DIR / bundle / "configs").glob("*.json")):
        modules |= config_modules(read_json(path))
    missing = {}
    for module in sorted(modules - set(sys.stdlib_module_names) - covered):
        distributions = {canonicalize_name(d) for d in owners.get(module, [module])}
        if not distributions & listed:
            missing[module] = sorted(distributions)
    assert not missing, f"{bundle}: configs use {missing} but metadata required_packages_version lacks them"


def test_update_bundle_metadata_rewrites_versions_in_place(tmp_path):
    updater = load_script("update_bundle_metadata")
    pins = pinned_versions()
    source = load_metadata("pretrain")
    stale = {**source, "monai_version": "0.0.1", "numpy_version": "0.0.1"}
    stale["required_packages_version"] = {name: "0.0.1" for name in source["required_packages_version"]}
    path = tmp_path / "pretrain" / "configs" / "metadata.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(stale, indent=4) + "\n")
    with pytest.raises(SystemExit):
        updater.update_bundle_metadata(bundles_dir=str(tmp_path), check=True)
    assert json.loads(path.read_text()) == stale  # --check changes nothing

    changes = updater.update_bundle_metadata(bundles_dir=str(tmp_path))
    assert any("monai_version: 0.0.1 -> " in line for line in changes[str(path)])
    text = path.read_text()
    written = json.loads(text)
    assert text == json.dumps(written, indent=4) + "\n" and list(written) == list(stale)
    assert written["monai_version"] == pins["monai"] and written["pytorch_version"] == pins["torch"]
    assert written["numpy_version"] == pins["numpy"]
    assert list(written["required_packages_version"]) == list(source["required_packages_version"])
    assert not metadata_version_problems("pretrain", written, pins)
    assert updater.update_bundle_metadata(bundles_dir=str(tmp_path), check=True) == {}


# ---------------------------------------------------------------------------------------------------------------
# workflows and networks


def workflow_overrides(bundle: str, config: dict, root: Path, checkpoints: CheckpointFactory, datalist: str) -> dict:
    overrides = {
        "image_size": TINY_SIZE,
        "dataset_dir": "",
        "datalist": datalist,
        "synthetic_images": 12,
        "limit": 4,
        "batch_size": 2,
        "val_batch_size": 2,
        "num_workers": 0,
        "tracking_enabled": False,
        "output_dir": str(root / "out"),
        "ckpt_dir": str(root / "models"),
        "ckpt_path": str(checkpoints.bundle(bundle, TINY_SIZE)),
        "pretrained_ckpt": str(checkpoints.pretrain(TINY_SIZE)),
    }
    return present_overrides(config, overrides)


@pytest.mark.parametrize("bundle, config", WORKFLOW_CASES, ids=[f"{b}-{c}" for b, c in WORKFLOW_CASES])
def test_workflow_has_every_required_property(bundle, config, gate_root, checkpoints, tiny_datalist):
    """``create_workflow(...).check_properties()`` finds nothing missing, and building it trains nothing."""
    from monai.bundle import create_workflow
    from monai.utils import set_determinism

    path = config_file(bundle, config)
    root = gate_root / bundle / config
    content = read_json(path)
    # MONAI's check_properties reads h["_target_"] of every train#handlers item (a TypeError on an "@id" string)
    handlers = content.get("train", {}).get("handlers", []) if isinstance(content.get("train"), dict) else []
    references = [h for h in handlers if not isinstance(h, dict)]
    assert not references, (
        f"{path.relative_to(REPO)}: train#handlers must hold only dicts for MONAI's check_properties; move "
        f"{references} into the trainer's train_handlers expression (see bundles/pretrain/configs/train.json)"
    )
    overrides = workflow_overrides(bundle, content, root, checkpoints, tiny_datalist)
    try:
        workflow = create_workflow(
            config_file=str(path), workflow_type=WORKFLOW_TYPES[config], logging_file=False, **overrides
        )
        missing = workflow.check_properties()
    finally:
        set_determinism(seed=None)  # a config's `initialize` may seed the global RNGs of this process
    assert missing == [], f"{path.relative_to(REPO)}: missing or mis-referenced properties {missing}"
    written = sorted(p.name for p in (root / "models").rglob("*") if p.is_file()) if (root / "models").exists() else []
    assert not written, f"building the {config} workflow wrote checkpoints {written}"


@pytest.mark.parametrize("bundle", BUNDLES)
def test_metadata_input_size_matches_the_inference_config(bundle):
    inference = read_json(config_file(bundle, "inference"))
    shape = load_metadata(bundle)["network_data_format"]["inputs"]["image"]["spatial_shape"]
    if "image_size" in inference:
        assert shape == [inference["image_size"]] * len(shape), f"{bundle}: metadata {shape} vs image_size"


def referenced_ids(config: Mapping[str, Any], item_id: str) -> set[str]:
    """Top-level IDs that ``config[item_id]`` references (``@id``, also inside ``$`` expressions), transitively."""
    found, pending = set(), [item_id]
    while pending:
        current = pending.pop()
        for ref in re.findall(r"@([A-Za-z_]\w*)", json.dumps(config.get(current))):
            if ref not in found and ref in config:
                found.add(ref)
                pending.append(ref)
    return found


@pytest.mark.parametrize("bundle", BUNDLES)
def test_inference_network_passes_verify_net_in_out(bundle, gate_root, checkpoints):
    """At the metadata's own input size, with tiny checkpoints only where building the network reads one."""
    from monai.bundle import verify_net_in_out

    path = config_file(bundle, "inference")
    config = read_json(path)
    net_id = load_script("export_bundle").export_network_id(config)
    size = int(load_metadata(bundle)["network_data_format"]["inputs"]["image"]["spatial_shape"][0])
    needed = referenced_ids(config, net_id)
    overrides = {}
    if "ckpt_path" in needed:
        overrides["ckpt_path"] = str(checkpoints.bundle(bundle, size))
    if "pretrained_ckpt" in needed:
        overrides["pretrained_ckpt"] = str(checkpoints.pretrain(size))
    verify_net_in_out(
        net_id=net_id, meta_file=str(config_file(bundle, "metadata")), config_file=str(path), device="cpu", **overrides
    )


def test_referenced_ids_follow_references_transitively():
    config = {"a": {"_target_": "X", "b": "@b"}, "b": "$f(@c#x, @d)", "c": {"x": 1}, "d": 2, "e": "@a"}
    assert referenced_ids(config, "a") == {"b", "c", "d"}
    assert referenced_ids(config, "d") == set()


# ---------------------------------------------------------------------------------------------------------------
# layout, files, README, formatting


@pytest.mark.parametrize("bundle", BUNDLES)
def test_model_zoo_layout(bundle):
    root = BUNDLES_DIR / bundle
    assert root.is_dir(), f"bundles/{bundle} is missing"
    for name in expected_configs(bundle) + ("metadata",):
        config_file(bundle, name)
    logging_conf = root / "configs" / "logging.conf"
    assert logging_conf.is_file(), f"bundles/{bundle}/configs/logging.conf is missing"
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(logging_conf)
    assert {"loggers", "handlers", "formatters"} <= set(parser.sections()), f"{logging_conf} is not a logging INI"
    license_file = root / "LICENSE"
    assert license_file.is_file() and "Apache License" in license_file.read_text(), f"bundles/{bundle}/LICENSE"
    for name in ("README.md", "data_license.txt"):
        doc = root / "docs" / name
        assert doc.is_file() and doc.read_text().strip(), f"bundles/{bundle}/docs/{name} is missing or empty"


def committed_files(folder: Path) -> list[Path]:
    """Files git would commit under ``folder`` (tracked, or new and not ignored); a plain walk without git."""
    git = shutil.which("git")
    if git:
        result = subprocess.run(
            [git, "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", str(folder)],
            cwd=REPO,
            capture_output=True,
            timeout=60,
        )
        if result.returncode == 0:
            names = [n for n in result.stdout.decode().split("\0") if n]
            return [REPO / n for n in names if (REPO / n).is_file()]
    ignored = {"models", "eval", "__pycache__"}
    return [p for p in folder.rglob("*") if p.is_file() and not ignored & set(p.relative_to(folder).parts)]


@pytest.mark.parametrize("bundle", BUNDLES)
def test_no_large_files_and_no_weights_committed(bundle):
    root = BUNDLES_DIR / bundle
    files = committed_files(root)
    assert files, f"bundles/{bundle} has no files"
    large = {str(p.relative_to(REPO)): p.stat().st_size for p in files if p.stat().st_size > MAX_FILE_BYTES}
    assert not large, f"files over 1 MB: {large}"
    weights = [str(p.relative_to(REPO)) for p in files if p.suffix.lower() in WEIGHT_SUFFIXES]
    assert not weights, f"weights must not be committed: {weights}"
    git = shutil.which("git")
    if git and (REPO / ".git").exists():
        for probe in ("models/model.pt", "models/model.ts", "eval/metrics.json"):
            result = subprocess.run([git, "check-ignore", "-q", str(root / probe)], cwd=REPO, timeout=60)
            assert result.returncode == 0, f"bundles/{bundle}/{probe} would not be git-ignored"


#: README sections of the Model Zoo template: name -> heading pattern
README_SECTIONS = {
    "overview": r"overview",
    "data": r"\bdata\b",
    "training configuration": r"configuration",
    "performance": r"performance",
    "how to run each config": r"\brun\b|\busage\b",
    "references": r"references?",
    "license": r"licen[cs]e",
}


def markdown_sections(text: str) -> dict[str, str]:
    """``{heading: body}`` for every ``#``..``###`` heading outside fenced code."""
    sections: dict[str, str] = {}
    heading, body, fenced = None, [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"#{1,3}\s+(.*)", line)
        if match:
            if heading is not None:
                sections[heading] = "\n".join(body)
            heading, body = match.group(1).strip(), []
        elif heading is not None:
            body.append(line)
    if heading is not None:
        sections[heading] = "\n".join(body)
    return sections


@pytest.mark.parametrize("bundle", BUNDLES)
def test_readme_follows_the_model_zoo_template(bundle):
    readme = BUNDLES_DIR / bundle / "docs" / "README.md"
    assert readme.is_file(), f"bundles/{bundle}/docs/README.md is missing"
    sections = markdown_sections(readme.read_text())
    wanted = dict(README_SECTIONS)
    if "train" in bundle_configs(bundle):
        wanted["training configuration"] = r"training configuration"
    missing = [
        name for name, pattern in wanted.items() if not any(re.search(pattern, h, re.IGNORECASE) for h in sections)
    ]
    assert not missing, f"bundles/{bundle}/docs/README.md lacks sections {missing}; it has {list(sections)}"
    performance = "\n".join(body for h, body in sections.items() if re.search("performance", h, re.IGNORECASE))
    assert re.search(r"\d\.\d", performance), f"{bundle}: the performance section reports no measured number"
    assert re.search(r"python -m monai\.bundle|python scripts/|torchrun", performance), (
        f"{bundle}: the performance section must give the command that measured its numbers"
    )
    runs = "\n".join(body for h, body in sections.items() if re.search(README_SECTIONS["how to run each config"], h))
    for name in sorted(set(bundle_configs(bundle)) & set(WORKFLOW_TYPES)):
        assert f"configs/{name}.json" in runs, f"{bundle}: the README does not say how to run configs/{name}.json"


def is_pretty_json(text: str) -> bool:
    data = json.loads(text)
    return text in (json.dumps(data, indent=4) + "\n", json.dumps(data, indent=4, ensure_ascii=False) + "\n")


@pytest.mark.parametrize(
    "text, pretty",
    [
        ['{\n    "a": 1,\n    "b": [\n        2\n    ]\n}\n', True],
        ['{"a": 1, "b": [2]}\n', False],
        ['{\n  "a": 1\n}\n', False],
        ['{\n    "a": 1\n}', False],
    ],
)
def test_pretty_json_check(text, pretty):
    assert is_pretty_json(text) == pretty


@pytest.mark.parametrize("bundle", BUNDLES)
def test_json_configs_are_pretty_printed(bundle):
    files = sorted((BUNDLES_DIR / bundle / "configs").glob("*.json"))
    assert files, f"bundles/{bundle}/configs has no JSON config"
    ugly = [str(p.relative_to(REPO)) for p in files if not is_pretty_json(p.read_text())]
    assert not ugly, f"not json.dumps(indent=4) + newline (key order kept): {ugly}"
