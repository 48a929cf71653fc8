"""Case 5: configs. Only the project's own configs and logging files are loaded by default, and values that a
bundle ``ConfigParser`` would evaluate (``$...``, ``_target_``) are evaluated only when they come through the
documented ``monai.bundle`` command line (or the bundle's own files), never from a data file or a server request.

Server requests: tests/label/test_server.py::test_config_expressions_are_refused_and_not_evaluated (``$``, ``@``,
``_target_`` in ``params`` -> 422, nothing runs) and tests/label/test_params.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: modules that handle user data or requests: none may hand anything to a config parser or evaluate strings.
DATA_AND_SERVER_PACKAGES = ["data", "label", "interpret", "metrics"]
_EVALUATING = re.compile(r"\b(ConfigParser|ConfigWorkflow|ConfigItem|ConfigExpression|monai\.bundle)\b")


@pytest.mark.parametrize("package", DATA_AND_SERVER_PACKAGES)
def test_data_and_server_code_never_parses_configs_or_evaluates_strings(package):
    offenders = []
    for path in sorted((REPO / "radlas_monai" / package).rglob("*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("eval", "exec", "compile", "__import__"):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)[:80]}")
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [getattr(node, "module", "") or ""] + [a.name for a in node.names]
                if any(_EVALUATING.search(n) for n in names):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: imports {names}")
    assert not offenders, "\n".join(offenders)


def test_bundle_logging_files_build_handlers_from_literals_only():
    """``logging.config.fileConfig`` evaluates each handler's ``args``: the shipped files use plain streams only."""
    import configparser

    for path in sorted(REPO.glob("bundles/*/configs/logging.conf")):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path)
        for section in parser.sections():
            if section.startswith("handler_"):
                args = parser[section].get("args", "()")
                assert re.fullmatch(r"\((sys\.std(out|err))?,?\)", args.replace(" ", "")), f"{path}: {section} {args}"


@pytest.mark.slow
def test_datalist_values_that_look_like_expressions_are_data(campaign):
    """The campaign's datalist holds ``$open(...)`` strings and ``_target_`` dicts in its items and description."""
    text = campaign.datalist.read_text()
    assert "$open(" in text and "_target_" in text
    assert not (campaign.root / "evaluated-marker").exists()


@pytest.mark.slow
def test_only_the_bundles_own_logging_and_configs_are_loaded(localized):
    """Localization inference run from a folder (and on a data folder) holding hostile ``logging.conf``,
    ``configs/logging.conf`` and ``configs/*.json``: none is loaded; the bundle's own logging file is."""
    root, inputs, output = localized
    assert (inputs / "logging.conf").is_file() and (inputs / "configs" / "inference.json").is_file()
    assert not (root / "evaluated-marker").exists()
    own = REPO / "bundles" / "lesion_localization" / "configs" / "logging.conf"
    assert f"Setting logging properties based on config: {own}" in output
