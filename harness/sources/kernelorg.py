"""kernel.org releases: the tarball's sha256 from its directory's sha256sums.asc, whose OpenPGP
signature gpgv checks when a keyring is configured."""

from __future__ import annotations

import base64
import os
import re
import tempfile
from pathlib import Path

from harness.core import proc
from harness.core.errors import HarnessError
from harness.core.http import http_get

GPG_TIMEOUT = 60.0
KERNEL_ORG = "https://cdn.kernel.org/pub/linux/kernel"


def kernelorg_sha256(directory: str, name: str, keyring: str | None) -> tuple[str, str]:
    """The sha256 the directory's sha256sums.asc gives ``name``, and how far it is trusted."""
    url = f"{directory}/sha256sums.asc"
    signed = http_get(url).content
    if keyring:
        text = gpg_verified(signed, Path(keyring).expanduser().absolute(), url)
        trust = f"sha256 from sha256sums.asc, signature verified with {keyring}"
    else:
        text = clearsigned_text(signed.decode(errors="replace"))
        trust = "sha256 from sha256sums.asc, signature NOT verified (no keyring configured)"
    sha = next((line.split()[0] for line in text.splitlines()
                if line.split()[1:] == [name] and re.fullmatch(r"[0-9a-f]{64}", line.split()[0])),
               None)
    if sha is None:
        raise HarnessError("source", f"{url}: no sha256 for {name} (not released there?)")
    return sha, trust


def clearsigned_text(text: str) -> str:
    """The signed body of an OpenPGP clearsigned text (RFC 4880 7), dash-escaping undone; a plain
    text as it is. Only for the unverified case: a verified body comes from gpgv itself."""
    m = re.search(r"^-----BEGIN PGP SIGNED MESSAGE-----\r?\n(?:.+\r?\n)*?\r?\n(.*?)\r?\n"
                  r"-----BEGIN PGP SIGNATURE-----", text, re.M | re.S)
    return re.sub(r"^- ", "", m.group(1), flags=re.M) if m else text


def gpg_verified(signed: bytes, keyring: Path, url: str) -> str:
    """What the signature covers, and only that: text outside the signed part never counts."""
    with tempfile.TemporaryDirectory(prefix="kharness-gpg-") as home:
        (Path(home) / "sums.asc").write_bytes(signed)
        try:
            key = keyring.read_bytes()
        except OSError as e:
            raise HarnessError("source", f"{keyring}: cannot read the keyring: {e.strerror}")
        if key.lstrip().startswith(b"-----BEGIN PGP"):  # gpgv reads binary keyrings only
            keyring = Path(home) / "keyring.gpg"
            keyring.write_bytes(dearmor(key.decode(errors="replace")))
        # GNUPGHOME: gpgv must not read, or create, the user's own keyrings
        r = proc.run(["gpgv", "--keyring", str(keyring), "--output", "-", str(Path(home) / "sums.asc")],
                     "source", GPG_TIMEOUT, env={**os.environ, "GNUPGHOME": home}, check=False,
                     what="gpgv")
    if r.returncode != 0:
        why = (str(r.stderr).strip().splitlines() or ["no output"])[-1]
        raise HarnessError("source", f"{url}: signature not verified with {keyring}: {why}")
    return str(r.stdout)


def dearmor(text: str) -> bytes:
    """ASCII-armored key blocks (RFC 4880 6.2) as the binary packets they carry."""
    blocks = re.findall(r"^-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n(?:.+\r?\n)*?\r?\n(.*?)"
                        r"^(?:=.{4}\r?\n)?-----END PGP PUBLIC KEY BLOCK-----", text, re.M | re.S)
    try:
        return b"".join(base64.b64decode("".join(b.split()), validate=True) for b in blocks)
    except ValueError as e:
        raise HarnessError("source", f"unreadable armored keyring: {e}")
