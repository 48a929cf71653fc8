"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture()
def one_thread():
    """Run on one intra-op thread (restored afterwards): tiny tensors are fastest and reproducible that way, and
    CI's two cores are shared with the test runner. Modules opt in with ``pytestmark = pytest.mark.usefixtures(...)``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
