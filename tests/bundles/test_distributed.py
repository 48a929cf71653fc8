"""Distributed training, as the bundles document and wire it (the torchrun runs live in each bundle's own tests).

For every bundle with a ``multi_gpu_train.json``: the config wraps the network in DDP, shards data with a
distributed sampler and keeps checkpoints and MLflow on rank 0; a test runs it with ``torchrun --nproc_per_node=2``;
and the README documents multi-node use (torchrun rendezvous, a remote MLflow tracking server).
"""

from __future__ import annotations

import re

import pytest
from test_model_zoo_gate import (
    BUNDLES,
    BUNDLES_DIR,
    REPO,
    bundle_configs,
    config_file,
    markdown_sections,
    read_json,
)

DISTRIBUTED_BUNDLES = [b for b in BUNDLES if "multi_gpu_train" in bundle_configs(b)]
#: what the multi-node section must name: pattern -> what it stands for
MULTI_NODE_TERMS = {
    r"torchrun": "the torchrun launcher",
    r"--nnodes[= ]": "--nnodes",
    r"--node_rank[= ]": "--node_rank",
    r"--rdzv_backend[= ]c10d": "--rdzv_backend=c10d",
    r"--rdzv_endpoint[= ]\S+:\d+": "--rdzv_endpoint=HOST:PORT",
    r"tracking_uri": "tracking_uri of a remote MLflow server",
    r"https?://": "an http(s) tracking server URI",
}


@pytest.mark.parametrize("bundle", DISTRIBUTED_BUNDLES)
def test_readme_documents_multi_node_training(bundle):
    readme = BUNDLES_DIR / bundle / "docs" / "README.md"
    assert readme.is_file(), f"bundles/{bundle}/docs/README.md is missing"
    sections = markdown_sections(readme.read_text())
    section = "\n".join(body for heading, body in sections.items() if re.search("multi-node", heading, re.IGNORECASE))
    assert section, f"bundles/{bundle}/docs/README.md has no multi-node section; it has {list(sections)}"
    missing = [what for pattern, what in MULTI_NODE_TERMS.items() if not re.search(pattern, section)]
    assert not missing, f"bundles/{bundle}/docs/README.md multi-node section does not give {missing}"


@pytest.mark.parametrize("bundle", DISTRIBUTED_BUNDLES)
def test_multi_gpu_config_is_data_parallel_with_rank_zero_outputs(bundle):
    read_json(config_file(bundle, "multi_gpu_train"))
    # multi_gpu_train.json is merged over train.json: the sampler may be declared in either
    text = config_file(bundle, "train").read_text() + config_file(bundle, "multi_gpu_train").read_text()
    expected = {
        "DistributedDataParallel": "the network wrapped in DDP",
        "get_world_size()": "the sampler sharded over the world size",
        "init_process_group": "a process group",
        "gloo": "the gloo backend for CPU",
        "DistributedSampler": "data sharded by a distributed sampler",
        "get_rank()": "rank-dependent outputs (checkpoints, MLflow on rank 0)",
        "destroy_process_group": "the process group torn down in finalize",
    }
    missing = [what for token, what in expected.items() if token not in text]
    assert not missing, f"bundles/{bundle}/configs/multi_gpu_train.json (over train.json) lacks {missing}"


@pytest.mark.parametrize("bundle", DISTRIBUTED_BUNDLES)
def test_multi_gpu_config_is_run_with_torchrun_in_the_suite(bundle):
    """Some test launches ``bundles/<bundle>`` train + multi_gpu_train with two processes."""
    gate = {"test_distributed.py", "test_model_zoo_gate.py", "test_export.py"}
    tests = [p for p in sorted((REPO / "tests" / "bundles").glob("test_*.py")) if p.name not in gate]
    runners = [
        p.name
        for p in tests
        if all(token in p.read_text() for token in (f'"{bundle}"', '"multi_gpu_train"', "--nproc_per_node=2"))
    ]
    assert runners, f"no test under tests/bundles runs {bundle}'s multi_gpu_train.json with --nproc_per_node=2"
