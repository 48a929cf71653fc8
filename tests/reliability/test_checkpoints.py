"""Case 3: checkpoints. A malicious pickle on every load path runs no code (even with
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``); no unsafe deserialisation exists in the package; a SIGKILL inside a save
leaves the previous checkpoint valid and the resumed run ends with the uninterrupted run's network, optimizer and
scheduler state.

Unit-level: tests/handlers/test_checkpoint_io.py (SIGKILL of a bare ``atomic_torch_save``, refused custom class),
tests/engines/test_resume.py (resume equality on a toy engine), tests/bundles/test_pretrain_bundle.py (SIGKILL
*between* saves, network only).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from radlas_monai.handlers.checkpoint_io import CheckpointError

REPO = Path(__file__).resolve().parents[2]
SCANNED = [REPO / "radlas_monai", REPO / "scripts", REPO / "bundles"]


class _Payload:
    """Pickles as a call that writes a marker file: what a hostile checkpoint does on ``weights_only=False``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


def _malicious(path: Path, marker: Path, layout: str) -> Path:
    """A checkpoint whose unpickling runs code, in the layouts the loaders accept."""
    from radlas_monai.networks import RadLAS

    state = {k: v for k, v in RadLAS(preset="tiny", img_size=32).state_dict().items()}
    if layout == "state_dict":
        state["evil"] = _Payload(marker)
        torch.save(state, path)
    else:  # a full training checkpoint
        torch.save({"network": state, "trainer": {"epoch": 1}, "meta": _Payload(marker)}, path)
    return path


def _tiny_radlas():
    from radlas_monai.networks import RadLAS

    return RadLAS(preset="tiny", img_size=32)


def _load_paths() -> dict[str, Callable[[Path], object]]:
    """Every function of the product that reads a checkpoint file."""
    from radlas_monai.engines import lineage, localization
    from radlas_monai.engines.resume import ResumeFromCheckpoint
    from radlas_monai.handlers.checkpoint_io import load_checkpoint, load_network_weights
    from radlas_monai.networks import RadLASLesionMap
    from radlas_monai.networks.classifier_loading import load_pretrained_backbone

    def resume(path: Path) -> object:
        handler = ResumeFromCheckpoint(path, _tiny_radlas())
        return handler(type("E", (), {"state": None})())

    return {
        "load_checkpoint": lambda p: load_checkpoint(p),
        "load_network_weights": lambda p: load_network_weights(_tiny_radlas(), p),
        "encoder.load_from_pretrain": lambda p: _tiny_radlas().encoder.load_from_pretrain(p),
        "classifier backbone": lambda p: load_pretrained_backbone(_tiny_radlas().encoder, p),
        "resume": resume,
        "lineage": lambda p: lineage.checkpoint_digests(p),
        "localization lesion map": lambda p: localization.load_lesion_map_network(
            RadLASLesionMap(network=_tiny_radlas()), p
        ),
        "localization classifier": lambda p: localization.load_classifier(p, ["Nodule"], preset="tiny", image_size=32),
    }


LOAD_PATH_NAMES = [
    "load_checkpoint",
    "load_network_weights",
    "encoder.load_from_pretrain",
    "classifier backbone",
    "resume",
    "lineage",
    "localization lesion map",
    "localization classifier",
]


def test_payload_is_live(tmp_path):
    """Control: without weights_only the payload does run (so the refusals below mean something)."""
    marker = tmp_path / "marker"
    path = _malicious(tmp_path / "evil.pt", marker, "checkpoint")
    torch.load(path, weights_only=False)
    assert marker.read_text() == "code ran"


@pytest.mark.parametrize("layout", ["state_dict", "checkpoint"])
@pytest.mark.parametrize("name", LOAD_PATH_NAMES)
def test_malicious_pickle_is_refused_on_every_load_path(tmp_path, monkeypatch, name, layout):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "marker"
    path = _malicious(tmp_path / "model.pt", marker, layout)
    load = _load_paths()[name]
    assert set(_load_paths()) == set(LOAD_PATH_NAMES)
    if name == "lineage":  # lineage tags are best effort: an unreadable sibling is no lineage, never an error
        from radlas_monai.handlers.checkpoint_io import file_sha256

        assert load(path) == [file_sha256(path)]
    else:
        with pytest.raises(CheckpointError, match="weights_only") as err:
            load(path)
        assert err.value.path == str(path)
    assert not marker.exists(), f"{name} ran code from a checkpoint"


def test_a_wrapped_network_loads_an_unwrapped_checkpoint(tmp_path):
    """A DDP job resuming: the network is wrapped, ``checkpoint_last.pt`` holds the unwrapped state (case 7 found
    that resume failed with ``missing keys module.*``)."""
    from radlas_monai.handlers.checkpoint_io import atomic_torch_save, load_network_state, load_network_weights

    source, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    path = atomic_torch_save({"network": source.state_dict()}, tmp_path / "checkpoint_last.pt")
    wrapped = torch.nn.DataParallel(target)  # same code path as DistributedDataParallel (both wrap ``module``)
    load_network_state(wrapped, source.state_dict(), path=path)
    assert torch.equal(target.weight, source.weight)
    load_network_weights(torch.nn.DataParallel(torch.nn.Linear(3, 2)), path)
    with pytest.raises(CheckpointError, match="missing keys"):
        load_network_state(torch.nn.DataParallel(torch.nn.Linear(3, 4)), {"bias": source.bias})


# ------------------------------------------------------------------------------------------- static check
def _unsafe_calls(source: str) -> list[tuple[int, str]]:
    """``(line, call)`` of every unsafe deserialisation call in Python ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        keywords = {k.arg: k.value for k in node.keywords}
        if name in ("torch.load", "torch.serialization.load"):
            safe = keywords.get("weights_only")
            if not (isinstance(safe, ast.Constant) and safe.value is True):
                found.append((node.lineno, ast.unparse(node)))
        elif re.fullmatch(r"(c?pickle|dill|joblib|_pickle)\.(load|loads|Unpickler)", name) or name in (
            "yaml.load",
            "yaml.unsafe_load",
            "yaml.full_load",
            "marshal.loads",
            "shelve.open",
        ):
            found.append((node.lineno, ast.unparse(node)))
        elif name in ("np.load", "numpy.load"):
            pickle_flag = keywords.get("allow_pickle")
            if isinstance(pickle_flag, ast.Constant) and pickle_flag.value is True:
                found.append((node.lineno, ast.unparse(node)))
    return found


@pytest.mark.parametrize(
    "source, flagged",
    [
        ["torch.load(p)", True],
        ["torch.load(p, weights_only=False)", True],
        ["torch.load(p, map_location='cpu', weights_only=True)", False],
        ["pickle.load(f)", True],
        ["pickle.loads(b)", True],
        ["yaml.load(s)", True],
        ["yaml.safe_load(s)", False],
        ["np.load(p, allow_pickle=True)", True],
        ["np.load(p)", False],
    ],
)
def test_static_checker_flags_unsafe_calls(source, flagged):
    assert bool(_unsafe_calls(source)) == flagged


def test_no_unsafe_deserialisation_in_the_package_scripts_or_configs():
    """Fails on any ``torch.load`` without ``weights_only=True``, any ``pickle.load`` / ``yaml.load`` in the
    package, the scripts and the bundles (Python files and the ``$`` expressions of JSON configs)."""
    offenders = []
    for root in SCANNED:
        for path in sorted(root.rglob("*.py")):
            offenders += [f"{path.relative_to(REPO)}:{line}: {call}" for line, call in _unsafe_calls(path.read_text())]
        for path in sorted(root.rglob("*.json")):
            values = re.findall(r'"\$((?:[^"\\]|\\.)*)"', path.read_text())
            for expression in values:
                try:
                    calls = _unsafe_calls(json.loads(f'"{expression}"'))
                except SyntaxError:
                    continue
                offenders += [f"{path.relative_to(REPO)}: {call}" for _, call in calls]
    assert not offenders, "unsafe deserialisation:\n" + "\n".join(offenders)


# ------------------------------------------------------------------------------------ SIGKILL inside a save
def _states_equal(a, b, where: str = "") -> list[str]:
    """Paths where two nested checkpoint structures differ (tensors compared exactly)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
        return [] if same else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where} keys"]
        return [d for k in a for d in _states_equal(a[k], b[k], f"{where}/{k}")]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if len(a) != len(b):
            return [f"{where} length"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _states_equal(x, y, f"{where}/{i}")]
    return [] if a == b else [where]


@pytest.mark.slow
def test_sigkill_inside_a_save_keeps_the_previous_checkpoint_and_resume_is_exact(campaign, crashed_and_resumed):
    killed = crashed_and_resumed
    assert killed.extra["killed_returncode"] == -9
    assert killed.extra["epoch_after_kill"] == 1  # the epoch-1 file survived the kill inside the epoch-2 save
    assert killed.extra["temp_files_after_kill"], "the kill did not happen inside the save"
    assert not list((killed.root / "models").glob(".checkpoint_last.pt.*"))  # removed by the resumed run
    straight = torch.load(campaign.root / "models" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    resumed = torch.load(killed.root / "models" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    for part in ("network", "optimizer", "lr_scheduler"):
        differences = _states_equal(straight[part], resumed[part], part)
        assert not differences, f"{len(differences)} differences, e.g. {differences[:3]}"
    assert int(resumed["meta"]["epoch"]) == 2
