"""Throw-away certificate authorities and certificates for TLS tests, made with the ``openssl``
command line (the venv has no ``cryptography``). EC P-256 keys: a whole set takes well under a second.
Keys are written mode 0600, as a real broker's would be."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "2"


@dataclass(frozen=True)
class Pem:
    crt: Path
    key: Path


def _openssl(*args: str | Path) -> None:
    binary = shutil.which("openssl")
    assert binary, "the openssl command line is needed to make test certificates (apt install openssl)"
    done = subprocess.run([binary, *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, f"openssl {' '.join(map(str, args[:2]))} failed: {done.stderr.strip()}"


def _key(path: Path) -> Path:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    os.chmod(path, 0o600)
    return path


def make_ca(directory: Path, name: str) -> Pem:
    """A self-signed CA ``name`` (its subject says so, so two CAs are easy to tell apart in logs)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = _key(directory / f"{name}-ca.key")
    crt = directory / f"{name}-ca.crt"
    _openssl("req", "-x509", "-new", "-key", key, "-out", crt, "-days", DAYS, "-subj", f"/O=Luot test/CN={name} CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return Pem(crt, key)


def issue_server_cert(ca: Pem, directory: Path, name: str,
                      alt_names: str = "IP:127.0.0.1,DNS:localhost") -> Pem:
    """A server certificate signed by ``ca`` for ``alt_names`` (what a client checks the host against)."""
    key = _key(directory / f"{name}.key")
    csr, crt = directory / f"{name}.csr", directory / f"{name}.crt"
    ext = directory / f"{name}.ext"
    ext.write_text(f"subjectAltName={alt_names}\nbasicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _openssl("req", "-new", "-key", key, "-out", csr, "-subj", f"/O=Luot test/CN={name}")
    _openssl("x509", "-req", "-in", csr, "-CA", ca.crt, "-CAkey", ca.key, "-CAcreateserial", "-out", crt,
             "-days", DAYS, "-extfile", ext)
    return Pem(crt, key)
