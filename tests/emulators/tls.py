"""A self-signed certificate for 127.0.0.1, acting as its own root (like a national CA
missing from the default trust store), for emulators served over HTTPS. Imports nothing
that reads the trust store, so a caller may set it up before importing HTTP clients."""

from __future__ import annotations

import subprocess
from pathlib import Path


def self_signed(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) in ``folder``, valid for a day; needs the openssl command."""
    cert, key = folder / "ca.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
            "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key
