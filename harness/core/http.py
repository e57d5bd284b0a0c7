"""HTTP for downloads (kernel tarballs, checksum files, mail threads): every failure one line,
and a download gets its final name only once its sha256 matched."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

import requests

from harness.core.cache import locked
from harness.core.errors import HarnessError
from harness.core.progress import Progress

HTTP_TIMEOUT = (15.0, 60.0)  # connect, read (between bytes)


def download(url: str, sha256: str, cache: Path, progress: Progress) -> Path:
    """``cache/downloads/<sha256>/<basename>``; only a verified file ever gets that name."""
    downloads = cache / "downloads"
    name = os.path.basename(urlparse(url).path)
    final = downloads / sha256 / (name if name not in ("", ".", "..") else "download")
    with locked(downloads / f"{sha256}.lock"):
        if final.is_file():
            return final
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=downloads)
        try:
            with os.fdopen(fd, "wb") as out:
                got = _stream(url, out, final.name, progress)
            if got != sha256:
                raise HarnessError("source",
                                   f"{url}: sha256 mismatch (expected {sha256}, got {got})")
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return final


def _stream(url: str, out: BinaryIO, name: str, progress: Progress) -> str:
    """Write the body to ``out`` and return its sha256; any short or failed transfer raises."""
    h, done, shown = hashlib.sha256(), 0, 0.0
    try:
        # identity: the sha256 is of the file as published, not of a transfer encoding of it
        with requests.get(url, stream=True, timeout=HTTP_TIMEOUT,
                          headers={"Accept-Encoding": "identity"}) as r:
            r.raise_for_status()
            total = int(r.headers.get("Content-Length") or 0) or None
            for chunk in r.iter_content(1 << 16):
                out.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if time.monotonic() - shown > 0.5:
                    shown = time.monotonic()
                    progress.download(name, done, total)
        progress.download(name, done, total)
    except requests.HTTPError as e:
        raise HarnessError("source", f"{url}: HTTP {_status(e)}")
    except requests.RequestException as e:
        raise HarnessError("source", f"{url}: {request_failure(e, done)}")
    if total is not None and done < total:
        raise HarnessError("source", f"{url}: truncated after {done} of {total} bytes")
    return h.hexdigest()


def request_failure(e: requests.RequestException, done: int = 0) -> str:
    """One line out of requests' nested exception text."""
    text = str(e)
    if isinstance(e, requests.Timeout):
        return f"timed out after {done} bytes"
    if "IncompleteRead" in text or "Connection broken" in text:
        return f"truncated after {done} bytes (connection closed early)"
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return errno.group(1).strip() if errno else type(e).__name__


def http_get(url: str, stage: str = "source", headers: dict[str, str] | None = None
             ) -> requests.Response:
    """A small body in one piece (a checksum file, a mail thread); any failure is one line."""
    try:
        r = requests.get(url, timeout=HTTP_TIMEOUT, headers=headers)
        r.raise_for_status()
        return r
    except requests.HTTPError as e:
        raise HarnessError(stage, f"{url}: HTTP {_status(e)}")
    except requests.RequestException as e:
        raise HarnessError(stage, f"{url}: {request_failure(e)}")


def _status(e: requests.HTTPError) -> str:
    return f"{e.response.status_code} {e.response.reason}" if e.response is not None else "error"
