"""RadLAS on MONAI: a foundation model for interpretable radiograph analysis.

Importing the package is cheap: sub-packages (``radlas_monai.data``, ``radlas_monai.transforms``,
``radlas_monai.networks``, ...) are imported on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
