"""MONAI Label integration: serve RadLAS lesion localization and classification to radiologists' viewers.

Needs the ``label`` install (``scripts/install_label.sh``; MONAI Label 0.8.5 with pydicom 2.4.4 and numpy < 2).
Nothing here imports ``monailabel`` at package import time:

- :mod:`~radlas_monai.label.main`: :class:`RadLASLabelApp`, the app MONAI Label loads (``main.py``)
- :mod:`~radlas_monai.label.infer_lesion`: ``radlas_lesion`` (mask / heat map + scored boxes)
- :mod:`~radlas_monai.label.infer_classification`: ``radlas_classification`` (a probability per class)
- :mod:`~radlas_monai.label.params`: the request-parameter allow-list
- :mod:`~radlas_monai.label.guard`: routes, upload limit and parameter checks in front of MONAI Label
- :mod:`~radlas_monai.label.decode`: upload decoding in a resource-limited worker process
- :mod:`~radlas_monai.label.models`: networks built from bundle folders without evaluating configs
- :mod:`~radlas_monai.label.studies`: the default synthetic studies folder and the datastore's state folder
- :mod:`~radlas_monai.label.app_logs`: the app's log file in the label cache, never in the package
- :mod:`~radlas_monai.label.server`: :func:`serve` (127.0.0.1 by default)
"""

from __future__ import annotations
