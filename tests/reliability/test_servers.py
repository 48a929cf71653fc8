"""Cases 1, 2 and 6 at the MONAI Label server: the bad-file corpus, the PHI DICOM and hostile uploads over HTTP.

One real server (``scripts/monailabel_server.py``, default host, tiny 64 px bundles, decoding worker capped at
``--decode_memory_mb 1100``) takes every corpus file as an upload: each is answered (200 for the documented
acceptances, 422 ``unreadable_image`` with the reader's ``kind`` otherwise) and the server keeps serving. A PNG that
is small on disk but decodes to 7000 x 7000 (under ``max_pixels``, so only the worker's memory cap stops it) costs
one 422 ``decode_failed``; the next request succeeds. The PHI DICOM, uploaded under its identifying file name,
leaves no identifier in the answer, the server log, the datastore cache or the temporary folder.

Request allow-lists, config expressions in ``params`` and disabled endpoints are in tests/label/test_server.py; the
``mlflow ui`` launcher's loopback default and non-loopback refusal in tests/scripts/test_mlflow_ui.py and
tests/utils/test_bind.py. Runs where the MONAI Label stack is installed (``scripts/install_label.sh``; the test
command installs it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("monailabel") is None,
        reason="MONAI Label is not installed: run scripts/install_label.sh (CI installs the label stack)",
    ),
]

REPO = Path(__file__).resolve().parents[2]
#: measured: the worker maps ~620 MB after warm-up and more once ITK (the compressed-DICOM fallback) is loaded;
#: decoding a 7000 x 7000 8-bit PNG needs ~660 MB more. At 1100 MB every corpus file decodes (ITK loaded or not) and
#: the 7000 x 7000 one cannot (it decodes at 1900 MB once ITK is loaded, at 4096 MB always).
DECODE_MEMORY_MB = 1100


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket in LISTEN state on ``port`` (Linux ``/proc/net/tcp*``)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if int(hex_port, 16) == port and state == "0A":
                if len(address) == 8:
                    found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
                else:
                    found.add("ipv6:" + address)
    return found


@pytest.fixture(scope="module")
def label_server(tmp_path_factory):
    from label_fixtures import write_studies, write_tiny_bundles
    from label_server import DEAD_PROXY, radlas_server_command, running_server
    from label_server import free_port as _free_port

    root = tmp_path_factory.mktemp("label_campaign")
    bundles = write_tiny_bundles(root / "bundles")
    studies = write_studies(root / "studies")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = DEAD_PROXY
    env.update(RADLAS_LABEL_CACHE=str(root / "cache"), TMPDIR=str(root / "tmp"), OMP_NUM_THREADS="1")
    # the decode worker runs under an address-space cap (DECODE_MEMORY_MB): glibc's per-thread malloc arenas (up to
    # 8 x cores, each reserving 64 MB) and ITK's per-core thread pool would make its headroom depend on the core count
    env.update(MALLOC_ARENA_MAX="2", ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS="1")
    (root / "tmp").mkdir()
    command = radlas_server_command(studies, bundles, port, f"--decode_memory_mb={DECODE_MEMORY_MB}")
    with running_server(command, root, port, env) as client:
        client.port = port
        yield client


def _good_png() -> bytes:
    from label_fixtures import radiograph
    from label_server import png_bytes as _png_bytes

    return _png_bytes(radiograph(40, 48))


def test_server_binds_loopback_by_default(label_server):
    assert _listening_addresses(label_server.port) == {"127.0.0.1"}


def test_non_loopback_bind_warns_that_authentication_is_off(tmp_path):
    """``serve(host="0.0.0.0")`` up to the bind (uvicorn stubbed): the warning is logged before anything listens."""
    script = (
        "import logging, sys, uvicorn\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "uvicorn.run = lambda app, **kwargs: print('BIND', kwargs['host'])\n"
        "from radlas_monai.label.server import serve\n"
        "serve(studies=sys.argv[1], host='0.0.0.0', port=8765)\n"
    )
    (tmp_path / "studies").mkdir()
    env = {**os.environ, "RADLAS_LABEL_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "studies")], capture_output=True, text=True, env=env, timeout=300
    )
    assert "BIND 0.0.0.0" in done.stdout, done.stderr[-3000:]
    assert "authentication OFF" in done.stderr and "127.0.0.1" in done.stderr


def test_corpus_uploads_get_typed_answers_and_the_server_keeps_serving(label_server, tmp_path):
    from corpus import build_corpus

    failures = []
    for entry in build_corpus(tmp_path / "corpus"):
        upload = (entry.path.name, entry.path.read_bytes())
        start = time.monotonic()
        status, _, body = label_server.infer("radlas_lesion", "output=json", None, upload, timeout=120)
        seconds = time.monotonic() - start
        answer = json.loads(body)
        if entry.accepted:
            if status != 200 or "boxes" not in answer:
                failures.append(f"{entry.name}: accepted file answered {status} {body[:200]!r}")
        elif status != 422 or answer.get("error") != "unreadable_image" or answer.get("kind") not in entry.expected:
            failures.append(f"{entry.name}: expected 422 {sorted(entry.expected)}, got {status} {body[:200]!r}")
        elif str(entry.path) in body.decode() or entry.path.name in body.decode():
            failures.append(f"{entry.name}: the answer names the server-side file: {body[:200]!r}")
        if seconds > 30:
            failures.append(f"{entry.name}: answered after {seconds:.1f} s")
    assert not failures, "\n".join(failures)
    assert label_server.process.poll() is None
    status, _, _ = label_server.infer("radlas_lesion", "output=json", None, ("ok.png", _good_png()))
    assert status == 200


def test_upload_exhausting_decoder_memory_costs_one_request(label_server, tmp_path):
    from corpus import png_decoding_to

    hostile = png_decoding_to(7000, 7000, ramp=True)  # 49 Mpx: under max_pixels, over the worker's memory cap
    assert len(hostile) < 1 << 20
    # a compressed DICOM first, so that the worker has loaded ITK (its largest resident state) before the attack
    from corpus import build_corpus

    itk_first = next(e for e in build_corpus(tmp_path / "corpus") if e.name == "dicom_jpeg_lossless_no_decoder")
    status, _, body = label_server.infer("radlas_lesion", "output=json", None, ("c.dcm", itk_first.path.read_bytes()))
    assert status == 422 and json.loads(body)["kind"] == "missing_decoder", body[:300]
    status, _, body = label_server.infer("radlas_lesion", "output=json", None, ("big.png", hostile), timeout=120)
    answer = json.loads(body)
    assert status == 422 and answer["kind"] == "decode_failed" and "MiB" in answer["detail"], body[:300]
    assert label_server.process.poll() is None
    for _ in range(2):  # the worker was replaced: the next requests succeed
        status, _, body = label_server.infer("radlas_lesion", "output=json", None, ("ok.png", _good_png()))
        assert status == 200, body[:300]
    assert label_server.request("GET", "/info/")[0] == 200


def test_phi_dicom_upload_leaves_no_identifier(label_server, tmp_path):
    from campaign import PHI_TOKENS, write_phi_dicom
    from test_phi import leaks

    phi = write_phi_dicom(tmp_path)
    answers = []
    for model, query in (
        ("radlas_lesion", "output=json"),
        ("radlas_lesion", "output=all"),
        ("radlas_classification", "output=json"),
    ):
        status, headers, body = label_server.infer(model, query, None, (phi.name, phi.read_bytes()))
        assert status == 200, body[:300]
        answers.append(json.dumps(headers).encode() + body)
    for answer in answers:
        assert not [t for t in PHI_TOKENS if t.encode() in answer], answer[:400]
    time.sleep(0.5)  # let the server flush its log
    log = (label_server.root / "server.log").read_text()
    assert not [t for t in PHI_TOKENS if t in log]
    assert not leaks(label_server.root, skip=(label_server.root / "server.log",))
