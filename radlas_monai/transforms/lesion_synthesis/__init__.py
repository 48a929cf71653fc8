"""Lesion synthesis for RadLAS Task I: synthetic lesion-like corruptions written into radiographs.

The network learns to restore the healthy radiograph from the corrupted one, and the soft lesion mask supervises its
grounding head. :class:`RandLesionSynthesis` works on one ``(C, H, W)`` image or a whole ``(B, C, H, W)`` batch (e.g.
on the GPU inside the training iteration); :class:`RandLesionSynthesisd` is its dictionary version.

Families (``LESION_FAMILIES``, one module each in :mod:`.families`): ``nodule`` (round nodules and masses, 5-60 mm,
soft lobulated margins, internal texture, contrast calibrated on real JSRT nodules), ``airspace_opacity`` (patchy
consolidation from thresholded multi-octave noise in a soft region), ``foreign_patch`` (a region of another
radiograph blended in), ``effusion`` (basal opacity with a lateral meniscus) and ``pneumothorax`` (apical/lateral
lucent crescent without markings, with a pleural line).

Conventions:

- ``image = healthy + alpha * (lesioned - healthy)``; the returned ``mask`` is ``alpha`` (float32, soft, in [0, 1]),
  exactly 0 wherever the image is bit-identical to the input; ``mask > 0`` is the binary lesion mask.
- ``family`` is an int64 map (0 = none, ``k`` = ``LESION_FAMILIES[k - 1]``), converted lazily from a uint8 code.
- Sizes are in mm when the pixel spacing is known (call argument, ``meta["spacing"]`` in the dictionary version, or
  ``default_spacing``), otherwise in pixels.
- Lesions are centred inside the lung mask when given (and their mask is multiplied by a slightly dilated, soft lung
  field), otherwise inside two fixed lung ellipses of a PA film (:func:`.regions.default_lung_fields`).
- All parameters come from the transform's ``R`` (numpy ``RandomState``); texture noise from a ``torch.Generator``
  seeded from it on the input's device. Global random states are never touched.
- Speed: every lesion is rendered on a patch just covering it; per-lesion geometry is computed with numpy, pixel work
  with torch; composition touches only lesioned pixels. See ``scripts/benchmark.py lesion_synthesis``.
"""

from __future__ import annotations

from radlas_monai.transforms.lesion_synthesis.array import LesionSynthesisResult, RandLesionSynthesis
from radlas_monai.transforms.lesion_synthesis.dictionary import RandLesionSynthesisd
from radlas_monai.transforms.lesion_synthesis.families import DEFAULT_FAMILY_PROBS, LESION_FAMILIES

__all__ = [
    "LESION_FAMILIES",
    "DEFAULT_FAMILY_PROBS",
    "LesionSynthesisResult",
    "RandLesionSynthesis",
    "RandLesionSynthesisd",
]
