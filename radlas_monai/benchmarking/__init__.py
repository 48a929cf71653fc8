"""Side-by-side performance benchmarks of RadLAS against the tools a user would run instead (issue 8).

``scripts/benchmark.py`` is the command line; the pieces live here, one concept per module:

- :mod:`~radlas_monai.benchmarking.timing`: device synchronisation, interleaved (A, B, A, B) repeats, medians, noise;
- :mod:`~radlas_monai.benchmarking.memory`: peak memory of one contender (process RSS on CPU, CUDA allocator on GPU);
- :mod:`~radlas_monai.benchmarking.flops`: FLOP counts of a step and model FLOPs utilisation (MFU) on GPUs;
- :mod:`~radlas_monai.benchmarking.report`: tables, the JSON report, the environment;
- :mod:`~radlas_monai.benchmarking.inputs`: deterministic chest-like test images and a small radiograph folder;
- :mod:`~radlas_monai.benchmarking.pretrain`: pretraining step throughput, RadLAS versus MONAI's ViTAutoEnc recipe;
- :mod:`~radlas_monai.benchmarking.pipeline`: lesion synthesis and the pretrain bundle's data loader versus the
  model's step rate;
- :mod:`~radlas_monai.benchmarking.localization`: lesion-map latency, RadLAS versus DenseNet121 + Grad-CAM.

Nothing is imported here, so ``import radlas_monai.benchmarking`` stays cheap.
"""

from __future__ import annotations
