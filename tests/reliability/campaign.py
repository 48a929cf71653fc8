"""Shared pieces of the reliability campaign: the PHI patient, and the campaign's pretrain run (see conftest.py)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: the patient of the PHI case (issue 9, case 2): invented, distinctive tokens that cannot occur by chance.
PHI = {"PatientName": "Zyxwvut^Quirkelbaum", "PatientID": "PID908172", "PatientBirthDate": "19010203"}
PHI_TOKENS = ("Zyxwvut", "Quirkelbaum", "PID908172", "19010203")
PHI_FILE_NAME = "Zyxwvut_Quirkelbaum_PID908172_19010203.dcm"
#: the tiny pretrain run of the campaign: 64 px, tiny preset, 2 epochs, seeded.
TINY_PRETRAIN = {"image_size": 64, "batch_size": 8, "val_batch_size": 4, "log_interval": 1, "max_epochs": 2}


def write_phi_dicom(folder: Path) -> Path:
    """A realistic DX DICOM of a (fake) patient whose identifiers are in the header and in the file name."""
    from corpus import good_radiograph

    from radlas_monai.data.writers import write_dicom

    extra = {"InstitutionName": "Quirkelbaum Clinic", "AccessionNumber": "PID908172-ACC"}
    return write_dicom(
        good_radiograph(72, 60, seed=7), folder / PHI_FILE_NAME, modality="OT", patient=PHI, extra=extra
    )  # OT and no spacing: the loader warns about this very file twice


@dataclass
class CampaignRun:
    """The campaign's pretrain run over the bad-file corpus, a PHI DICOM and good images (see :func:`campaign`)."""

    root: Path
    datalist: Path
    corpus: list
    phi_file: Path
    overrides: dict
    output: str = ""
    lock_held_s: float = 0.0
    extra: dict = field(default_factory=dict)


def write_good_pngs(folder: Path, count: int) -> list[Path]:
    from corpus import good_radiograph

    from radlas_monai.data.writers import write_png

    return [write_png(good_radiograph(64, 64, seed=s), folder / f"good_{s:02d}.png") for s in range(count)]


def hold_store_lock(db: Path, process: subprocess.Popen, release_when: Path, deadline_s: float) -> float:
    """Wait for the run to exist, then hold ``BEGIN EXCLUSIVE`` on the store until ``release_when`` appears.

    Returns:
        seconds the lock was held (0.0 when the run ended before it could be taken).
    """
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with sqlite3.connect(db, timeout=0.1) as probe:
                if probe.execute("SELECT count(*) FROM runs WHERE status = 'RUNNING'").fetchone()[0]:
                    break
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    if process.poll() is not None:
        return 0.0
    locker = sqlite3.connect(db, timeout=30, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holding the tracking database mid-training
    start = time.monotonic()
    while not release_when.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    locker.execute("COMMIT")
    locker.close()
    return time.monotonic() - start


def write_hostile_configs(folder: Path, marker: Path) -> list[Path]:
    """Config and logging files that run code when loaded (``logging.config.fileConfig`` evaluates handler ``args``;
    a bundle ``ConfigParser`` evaluates ``$`` values and instantiates ``_target_``), where a careless tool would pick
    them up: the working folder, its ``configs/`` and the data folder. Loading any of them creates ``marker``."""
    payload = f"open({str(marker)!r}, 'w').write('loaded')"
    logging_conf = (
        "[loggers]\nkeys=root\n\n[handlers]\nkeys=evil\n\n[formatters]\nkeys=plain\n\n"
        "[logger_root]\nlevel=INFO\nhandlers=evil\n\n"
        f"[handler_evil]\nclass=StreamHandler\nlevel=INFO\nformatter=plain\nargs=({payload} and None,)\n\n"
        "[formatter_plain]\nformat=%(message)s\n"
    )
    config = {"imports": [f"${payload}"], "evil": {"_target_": "builtins.open", "file": str(marker), "mode": "w"}}
    written = []
    for where in (folder, folder / "configs"):
        where.mkdir(parents=True, exist_ok=True)
        written.append(where / "logging.conf")
        written[-1].write_text(logging_conf)
        for name in ("inference.json", "metadata.json", "train.json"):
            written.append(where / name)
            written[-1].write_text(json.dumps(config))
    return written
