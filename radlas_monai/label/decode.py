"""Decode untrusted uploads in a separate, resource-limited worker process.

A hostile or broken file (a decompression bomb, a DICOM that makes a decoder allocate gigabytes or spin)
must cost one failed request, not the server. :class:`SafeRadiographDecoder` runs
:func:`radlas_monai.data.readers.dispatch.read_radiograph` (the reader behind
:class:`~radlas_monai.data.loader.LoadRadiograph`: format by content, never by the file name; typed
:class:`~radlas_monai.data.errors.RadiographReadError` subclasses) in a one-process pool whose address
space is capped with ``RLIMIT_AS`` and whose CPU time is capped with ``RLIMIT_CPU``; each call also has a
wall-clock timeout. A worker that dies or times out is replaced, and the request gets a
:class:`DecodeFailedError` (a :class:`RadiographReadError`, HTTP 422).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from radlas_monai.data.errors import RadiographReadError
from radlas_monai.data.readers.base import ReadOptions

__all__ = ["DecodedUpload", "DecodeFailedError", "SafeRadiographDecoder"]

logger = logging.getLogger(__name__)

DEFAULT_MEMORY_LIMIT = 4 << 30
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_PIXELS = 50_000_000


class DecodeFailedError(RadiographReadError):
    """The decoding worker ran out of memory or time, or died, on this file."""

    kind = "decode_failed"


@dataclass
class DecodedUpload:
    """A decoded radiograph: ``pixels`` float32 ``(H, W)`` in [0, 1] (MONOCHROME2, rows = y) and safe facts."""

    pixels: np.ndarray
    source_format: str
    image_id: str
    facts: dict[str, Any] = field(default_factory=dict)


def _exit_with_parent(parent: int) -> None:
    """Worker thread: end the worker when the server process is gone (even after a SIGKILL)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _limit_worker(memory_bytes: int, cpu_seconds: int) -> None:
    """Pool initializer: cap the worker's address space and CPU time (POSIX only); exit with the parent."""
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    try:
        import resource

        if memory_bytes > 0:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        if cpu_seconds > 0:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    except (ImportError, ValueError, OSError) as err:  # pragma: no cover - non-POSIX
        logging.getLogger(__name__).warning("decoder worker runs without resource limits: %s", err)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _decode(path: str, max_pixels: int) -> DecodedUpload:
    """Worker body: read one file with the project's reader (runs in the worker process)."""
    from radlas_monai.data.readers.dispatch import read_radiograph

    quiet = logging.getLogger(__name__)
    decoded = read_radiograph(path, ReadOptions(max_pixels=max_pixels), lambda kind, msg: quiet.info(msg))
    facts = {
        "modality": decoded.modality,
        "photometric_interpretation": decoded.photometric_interpretation,
        "spacing": list(decoded.spacing) if decoded.spacing else None,
    }
    pixels = np.ascontiguousarray(decoded.pixels, dtype=np.float32)
    return DecodedUpload(pixels, decoded.source_format, decoded.image_id or "", facts)


def _warm() -> bool:
    import radlas_monai.data.readers.dispatch  # noqa: F401  (imports the decoders once)

    return True


class SafeRadiographDecoder:
    """Decode radiograph files in a resource-limited worker process.

    Args:
        memory_limit: address-space cap of the worker in bytes (``RLIMIT_AS``; 0: none).
        timeout: wall-clock seconds per file.
        max_pixels: images declaring more pixels are rejected before decoding
            (:class:`~radlas_monai.data.errors.ImageTooLargeError`).

    Raises:
        ValueError: non-positive ``timeout`` or ``max_pixels``, negative ``memory_limit``.

    Example::

        decoder = SafeRadiographDecoder(memory_limit=2 << 30, timeout=30)
        upload = decoder("upload.dcm")      # DecodedUpload; pixels (H, W) float32
    """

    def __init__(
        self,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        timeout: float = DEFAULT_TIMEOUT,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        if timeout <= 0 or max_pixels <= 0 or memory_limit < 0:
            raise ValueError(
                f"need timeout > 0, max_pixels > 0, memory_limit >= 0; got timeout={timeout}, "
                f"max_pixels={max_pixels}, memory_limit={memory_limit}"
            )
        self.memory_limit = int(memory_limit)
        self.timeout = float(timeout)
        self.max_pixels = int(max_pixels)
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_limit_worker,
                initargs=(self.memory_limit, int(self.timeout) + 5),
            )
        return self._pool

    def _discard(self) -> None:
        """Kill the worker (after a timeout or crash); the next call starts a fresh one."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list(getattr(pool, "_processes", {}).values()):
            if process.is_alive():
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def warm_up(self) -> None:
        """Start the worker and import the decoders now, so the first request does not pay for it."""
        with self._lock:
            self._executor().submit(_warm).result(timeout=max(self.timeout, 120.0))

    def __call__(self, path: str | os.PathLike) -> DecodedUpload:
        """Decode ``path``.

        Returns:
            The :class:`DecodedUpload`.

        Raises:
            RadiographReadError: a typed subclass for files that are not one 2D radiograph;
                :class:`DecodeFailedError` when the worker ran out of memory or time, or died.
        """
        path = os.fspath(path)
        with self._lock:
            future = self._executor().submit(_decode, path, self.max_pixels)
            try:
                return future.result(timeout=self.timeout)
            except FutureTimeout:
                self._discard()
                raise DecodeFailedError(path, f"decoding took longer than {self.timeout:g} s") from None
            except MemoryError:
                self._discard()
                raise DecodeFailedError(path, f"decoding needs more than {self.memory_limit >> 20} MiB") from None
            except BrokenProcessPool:
                self._discard()
                raise DecodeFailedError(path, "the decoding worker died on this file") from None
            except RadiographReadError:
                raise
            except Exception as err:  # any other decoder failure is a bad file, not a server error
                raise DecodeFailedError(path, f"decoding failed ({type(err).__name__})") from None

    def close(self) -> None:
        """Stop the worker."""
        with self._lock:
            self._discard()
