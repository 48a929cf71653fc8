"""Skip-and-report for unreadable radiographs: bad files are left out and recorded, never silently dropped.

Two guards:

* :func:`screen_datalist` reads every file of a datalist once, before training; items with a file that raises
  :class:`~radlas_monai.data.errors.RadiographReadError` (or any other reader exception, wrapped as one) are left
  out, and each bad file is recorded as ``(path, key, kind, reason)`` in a :class:`SkipReport`, which is logged
  (one summary line, one line per file) and optionally written as JSON.
* :class:`SkipBadFiles` wraps a MONAI ``Dataset`` (or any map-style dataset) for files that turn bad after
  screening: a failing item is recorded and replaced by the next good item (cyclically, deterministically), so
  batches keep their size.

Example::

    from radlas_monai.data.datalist import load_datalist
    from radlas_monai.data.screening import SkipBadFiles, screen_datalist

    items, report = screen_datalist(load_datalist("datalist.json"), report_path="outputs/skipped.json")
    dataset = SkipBadFiles(monai.data.Dataset(items, transform=preprocessing))
"""

from __future__ import annotations

import json
import logging
import operator
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, Subset

from radlas_monai.data.errors import MissingFileError, RadiographReadError

__all__ = ["MissingFileError", "SkippedFile", "SkipReport", "find_read_error", "screen_datalist", "SkipBadFiles"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkippedFile:
    """One file that was left out.

    Attributes:
        path: the file, as named in the datalist.
        key: the datalist key that named it (``"image"``, ``"mask"``, ...; ``""`` when unknown).
        kind: the error's short code (``"empty"``, ``"truncated"``, ``"unsupported_format"``, ``"missing"``, ...).
        reason: the error's reason, in words.
    """

    path: str
    key: str
    kind: str
    reason: str


@dataclass
class SkipReport:
    """What a screening (or a :class:`SkipBadFiles` dataset) left out.

    Attributes:
        skipped: the bad files, in the order they were found.
        checked: how many distinct files (screening) or items (:class:`SkipBadFiles`) were read.
    """

    skipped: list[SkippedFile] = field(default_factory=list)
    checked: int = 0

    def add(self, error: RadiographReadError, key: str = "", path: str | None = None) -> SkippedFile:
        """Record a read error (``path`` overrides ``error.path``) and return the record."""
        record = SkippedFile(path if path is not None else error.path, key, error.kind, error.reason)
        self.skipped.append(record)
        return record

    def counts(self) -> dict[str, int]:
        """Number of skipped files per kind, most frequent first."""
        return dict(Counter(s.kind for s in self.skipped).most_common())

    def summary(self) -> str:
        """One line, e.g. ``"checked 10 files: 7 readable, 3 skipped (empty: 1, truncated: 2)"``."""
        good = self.checked - len(self.skipped)
        line = f"checked {self.checked} files: {good} readable, {len(self.skipped)} skipped"
        if self.skipped:
            line += " (" + ", ".join(f"{kind}: {n}" for kind, n in self.counts().items()) + ")"
        return line

    def log(self, log: logging.Logger | None = None) -> None:
        """Log the summary (INFO, or WARNING when files were skipped) and one WARNING line per skipped file."""
        log = log or logger
        log.log(logging.WARNING if self.skipped else logging.INFO, "%s", self.summary())
        for s in self.skipped:
            log.warning("skipped %s [%s] %s: %s", s.path, s.key or "?", s.kind, s.reason)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content: ``checked``, ``num_skipped``, ``counts`` and the ``skipped`` records."""
        return {
            "checked": self.checked,
            "num_skipped": len(self.skipped),
            "counts": self.counts(),
            "skipped": [asdict(s) for s in self.skipped],
        }

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as pretty JSON, atomically; parent folders are created. Returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
        try:
            with handle:
                json.dump(self.to_dict(), handle, indent=2)
                handle.write("\n")
            os.replace(handle.name, path)
        except BaseException:
            if os.path.exists(handle.name):
                os.unlink(handle.name)
            raise
        return path

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> SkipReport:
        """Read a report written by :meth:`to_json`."""
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return cls([SkippedFile(**s) for s in data.get("skipped", [])], int(data.get("checked", 0)))


def find_read_error(error: BaseException) -> RadiographReadError | None:
    """The :class:`RadiographReadError` in an exception's chain (``__cause__`` / ``__context__``), if any.

    MONAI wraps transform errors (``RuntimeError("applying transform ...") from err``), so the reader's error is
    usually a few links down the chain.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, RadiographReadError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _loaders_for(keys: Sequence[str], loader: Any) -> dict[str, Callable[[str], Any]]:
    """One loader per key: the given one(s), or LoadRadiograph() for "image" and, since an empty mask is a
    valid mask, LoadRadiograph(mask=True) for every other key."""
    if loader is None:
        from radlas_monai.data.loader import LoadRadiograph

        image_loader, other_loader = LoadRadiograph(), LoadRadiograph(mask=True)
        return {key: image_loader if key == "image" else other_loader for key in keys}
    if isinstance(loader, Mapping):
        missing = [key for key in keys if key not in loader]
        if missing:
            raise ValueError(f"screen_datalist: no loader for keys {missing}; loaders given for {list(loader)}")
        return {key: loader[key] for key in keys}
    if not callable(loader):
        raise TypeError(f"screen_datalist: loader must be callable or a mapping of key -> callable, got {loader!r}")
    return {key: loader for key in keys}


def _check_file(path: str, loader: Callable[[str], Any]) -> RadiographReadError | None:
    """Read one file; ``None`` when readable, else the (possibly wrapped) read error."""
    if not os.path.isfile(path):
        return MissingFileError(path, "no such file" if not os.path.exists(path) else "not a regular file")
    try:
        loader(path)
    except Exception as err:  # every reader failure is recorded, none is silently dropped
        found = find_read_error(err)
        return found if found is not None else RadiographReadError(path, f"{type(err).__name__}: {err}")
    return None


def _files_of(item: dict, keys: Sequence[str]) -> list[tuple[str, str]]:
    files = []
    for key in keys:
        value = item.get(key)
        values = value if isinstance(value, list | tuple) else [value]
        files += [(os.fspath(v), key) for v in values if isinstance(v, str | os.PathLike)]
    return files


class _Progress:
    """tqdm when installed, else a log line every ~10 %."""

    def __init__(self, total: int, enabled: bool) -> None:
        from monai.utils import optional_import

        tqdm, has_tqdm = optional_import("tqdm", name="tqdm")
        self.bar = tqdm(total=total, desc="screening", unit="file") if enabled and has_tqdm else None
        self.total, self.done, self.enabled = total, 0, enabled
        self.every = max(1, total // 10)

    def step(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.enabled and (self.done % self.every == 0 or self.done == self.total):
            logger.info("screened %d / %d files", self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def screen_datalist(
    items: Sequence[dict],
    keys: Sequence[str] = ("image",),
    *,
    loader: Callable[[str], Any] | Mapping[str, Callable[[str], Any]] | None = None,
    strict: bool = False,
    report_path: str | os.PathLike | None = None,
    num_workers: int = 0,
    progress: bool = True,
) -> tuple[list[dict], SkipReport]:
    """Read every file of a datalist once; leave out the items with a bad file and report the bad files.

    Args:
        items: datalist items (as from :func:`~radlas_monai.data.datalist.load_datalist`, paths absolute).
        keys: item keys holding files to check; a key absent from an item is not checked; a list value
            (multi-channel input) has each of its files checked.
        loader: ``loader(path)`` reads one file and raises on failure, or a mapping ``key -> loader``;
            default: :class:`~radlas_monai.data.loader.LoadRadiograph` ``()`` for ``"image"`` and
            ``LoadRadiograph(mask=True)`` for other keys (an all-zero mask is a valid mask).
        strict: raise at the first bad file (in datalist order) instead of skipping it.
        report_path: where the :class:`SkipReport` JSON is written (nothing is written when ``None``).
        num_workers: threads reading files in parallel (0 = in this thread); ``loader`` must be thread-safe.
        progress: show progress (tqdm when installed, else a log line every ~10 % of the files).

    Returns:
        ``(kept_items, report)``: the good items in input order (the same dict objects) and the report.

    Raises:
        RadiographReadError: with ``strict``, for the first bad file (other reader exceptions are wrapped
            into a ``RadiographReadError`` naming the file; a missing file raises :class:`MissingFileError`).
    """
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    loaders = _loaders_for(keys, loader)
    per_item = [_files_of(item, keys) for item in items]
    unique = list(dict.fromkeys(file for files in per_item for file in files))  # (path, key), in datalist order
    errors: dict[tuple[str, str], RadiographReadError] = {}
    bar = _Progress(len(unique), progress)
    executor = ThreadPoolExecutor(max_workers=num_workers) if num_workers > 0 else None
    try:
        results = executor.map(lambda f: _check_file(f[0], loaders[f[1]]), unique) if executor else (
            _check_file(path, loaders[key]) for path, key in unique
        )  # fmt: skip
        for file, error in zip(unique, results):
            bar.step()
            if error is None:
                continue
            if strict:
                raise error
            errors[file] = error
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    report = SkipReport(checked=len(unique))
    for (path, key), error in errors.items():
        report.add(error, key=key, path=path)
    kept = [item for item, files in zip(items, per_item) if not any(file in errors for file in files)]
    report.log(logger)
    if report_path is not None:
        report.to_json(report_path)
    return kept, report


class SkipBadFiles(Dataset):
    """Dataset wrapper that replaces an item whose file fails to load by the next good item.

    ``dataset[i]`` is returned when it loads. When it raises an exception whose chain holds a
    :class:`~radlas_monai.data.errors.RadiographReadError` (MONAI wraps transform errors in ``RuntimeError``),
    the failure is recorded in :attr:`report` (and logged once), index ``i`` is remembered as bad, and
    ``i + 1, i + 2, ...`` (cyclically) are tried instead, so a batch keeps its size and the substitute is the same
    on every call. Other exceptions propagate. Works with ``monai.data.Dataset``, ``PersistentDataset`` and
    ``CacheDataset`` (whose cache is filled at construction: screen with :func:`screen_datalist` first, since a
    bad file fails there). With DataLoader workers, each worker process keeps its own :attr:`report`; the log
    lines are the cross-process record.

    Args:
        dataset: a map-style dataset (``__len__`` and ``__getitem__``).
        report: a report to append to (default: a new one).

    Raises:
        RuntimeError: from ``__getitem__``, when every item of the dataset fails to load.
    """

    def __init__(self, dataset: Any, report: SkipReport | None = None) -> None:
        self.dataset = dataset
        self.report = report if report is not None else SkipReport()
        self.bad_indices: set[int] = set()
        self._loaded: set[int] = set()

    def __len__(self) -> int:
        return len(self.dataset)

    def _key_of(self, index: int, path: str) -> str:
        data = getattr(self.dataset, "data", None)
        try:
            item = data[index] if data is not None else None
        except (IndexError, KeyError, TypeError):
            return ""
        if not isinstance(item, dict):
            return ""
        target = os.path.abspath(path)
        for key, value in item.items():
            values = value if isinstance(value, list | tuple) else [value]
            if any(isinstance(v, str | os.PathLike) and os.path.abspath(v) == target for v in values):
                return str(key)
        return ""

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return Subset(self, range(len(self))[index])
        size = len(self)
        index = operator.index(index)
        if not -size <= index < size:
            raise IndexError(f"index {index} out of range for a dataset of {size} items")
        index %= size
        for step in range(size):
            candidate = (index + step) % size
            if candidate in self.bad_indices:
                continue
            try:
                sample = self.dataset[candidate]
            except Exception as err:
                error = find_read_error(err)
                if error is None:
                    raise
                self.bad_indices.add(candidate)
                self._loaded.add(candidate)
                self.report.checked = len(self._loaded)
                record = self.report.add(error, key=self._key_of(candidate, error.path))
                logger.warning("item %d skipped: %s [%s] %s: %s", candidate, record.path, record.key or "?",
                               record.kind, record.reason)  # fmt: skip
                continue
            self._loaded.add(candidate)
            self.report.checked = len(self._loaded)
            return sample
        raise RuntimeError(
            f"SkipBadFiles: all {size} items of {type(self.dataset).__name__} failed to load; {self.report.summary()}"
        )
