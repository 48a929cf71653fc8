"""Tests of radlas_monai.benchmarking.flops: counted FLOPs and MFU arithmetic."""

from __future__ import annotations

import pytest
import torch

from radlas_monai.benchmarking.flops import count_flops, model_flops_utilization, peak_bf16_flops


@pytest.mark.parametrize("m, k, n", [(4, 8, 16), (3, 5, 7)])
def test_matmul_flops(m, k, n):
    a, b = torch.ones(m, k), torch.ones(k, n)
    assert count_flops(lambda: a @ b) == 2 * m * k * n


def test_backward_is_counted():
    weight = torch.ones(8, 8, requires_grad=True)
    x = torch.ones(4, 8)
    # forward 2*4*8*8; backward of y = x @ W for W only: grad_W = x^T @ grad_y, another 2*4*8*8
    assert count_flops(lambda: (x @ weight).sum().backward()) == 2 * (2 * 4 * 8 * 8)


def test_peak_and_mfu():
    assert peak_bf16_flops("cpu") is None
    assert peak_bf16_flops("cpu", override_tflops=100) == pytest.approx(1e14)
    assert model_flops_utilization(5e13, 1.0, 1e14) == pytest.approx(0.5)
    assert model_flops_utilization(5e13, 1.0, None) is None
