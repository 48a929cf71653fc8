"""The repository's promises about installation: setup.cfg, environment.yml, README and CI stay in step."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
NOT_DEPENDENCIES = {"python", "pip"}


def _setup_cfg_requirements() -> dict[str, Requirement]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    lines = parser["options"]["install_requires"].splitlines()
    lines += parser["options.extras_require"]["dev"].splitlines()
    reqs = [Requirement(line.strip()) for line in lines if line.strip() and not line.strip().startswith("#")]
    return {canonicalize_name(r.name): r for r in reqs}


def _conda_spec_to_requirement(spec: str) -> Requirement:
    # conda writes "python=3.11" for "==3.11"; every other spec here is already PEP 440
    return Requirement(re.sub(r"(?<![<>=!~])=(?!=)", "==", spec))


def _environment_requirements() -> dict[str, Requirement]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    specs: list[str] = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            specs += [p for p in dep["pip"] if not p.startswith("-e")]
        else:
            specs.append(dep)
    reqs = [_conda_spec_to_requirement(s) for s in specs]
    return {canonicalize_name(r.name): r for r in reqs if canonicalize_name(r.name) not in NOT_DEPENDENCIES}


def test_environment_and_setup_cfg_name_the_same_dependencies():
    setup, env = _setup_cfg_requirements(), _environment_requirements()
    assert set(setup) == set(env), (
        f"only in setup.cfg: {set(setup) - set(env)}; only in environment.yml: {set(env) - set(setup)}"
    )


@pytest.mark.parametrize("name", ["monai", "numpy", "pydicom", "itk-io", "mlflow", "pytorch-ignite", "pytest"])
def test_environment_and_setup_cfg_agree_on_versions(name):
    assert str(_setup_cfg_requirements()[name].specifier) == str(_environment_requirements()[name].specifier)


def test_monai_extras_agree():
    assert _setup_cfg_requirements()["monai"].extras == _environment_requirements()["monai"].extras


def test_torch_range_admits_the_local_cpu_wheel():
    torch_range = _setup_cfg_requirements()["torch"].specifier
    assert Version("2.13.0") in torch_range
    assert str(_environment_requirements()["torch"].specifier) == "==2.13.0"


def _command_after_marker(text: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "radlas: test-command" in line:
            return next(
                candidate.strip() for candidate in lines[i + 1 :] if candidate.strip() and "```" not in candidate
            )
    raise AssertionError("marker 'radlas: test-command' not found")


def test_ci_runs_the_readme_test_command():
    readme = _command_after_marker((ROOT / "README.md").read_text())
    ci = _command_after_marker((ROOT / ".ci" / "run").read_text())
    assert readme == ci
    assert "pytest" in ci
    # the CPU wheel is pinned in the command itself or in the install script it runs
    scripts = [ROOT / word for word in ci.split() if word.endswith(".sh")]
    assert "torch==2.13.0" in ci or any("torch==2.13.0" in s.read_text() for s in scripts if s.is_file())


@pytest.mark.parametrize(
    "path", ["README.md", "bundles", "radlas_monai", "scripts", "tests", "setup.cfg", "environment.yml", ".ci/run"]
)
def test_top_level_layout(path):
    assert (ROOT / path).exists()
