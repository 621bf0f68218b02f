"""TLS between the centres and the regional broker: the files, checked before they are used, and
why a connection fails, said in words an operator can act on.

Mosquitto reads the TLS files only when a bridge connects (centre side), so a missing or wrong file
would otherwise leave a centre running with a link that never comes up and a reason only in its
broker's log. The files are therefore checked where a configuration is generated (``luot server``,
``luot bridge-config``) and where the aggregator starts (``luot region --tls-ca``), and written as
absolute paths (Mosquitto would read a relative one from whatever directory it was started in).
"""

from __future__ import annotations

import os
import socket
import ssl
from pathlib import Path


class _Encrypted(Exception):
    pass


def _asks_passphrase() -> bytes:
    raise _Encrypted


def _readable(label: str, path: str | Path) -> Path:
    # absolute, but symlinks kept: a renewed certificate is often a link moved to a new file
    file = Path(os.path.abspath(Path(path).expanduser()))
    if any(ch.isspace() for ch in str(file)):
        raise ValueError(f"{label} {file}: Mosquitto cannot read paths with spaces in its configuration")
    try:
        with open(file, "rb") as handle:
            handle.read(1)
    except FileNotFoundError:
        raise ValueError(f"{label} {file}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{label} {file}: is a directory, not a PEM file") from None
    except OSError as error:
        raise ValueError(f"{label} {file}: cannot be read ({error.strerror})") from None
    return file


def check_ca(label: str, path: str | Path) -> Path:
    """The CA file as an absolute path, once it is known to hold at least one PEM certificate."""
    file = _readable(label, path)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(file))
    except ssl.SSLError:
        raise ValueError(f"{label} {file}: holds no PEM certificate (expected the CA certificate, "
                         "'-----BEGIN CERTIFICATE-----')") from None
    return file


def check_pair(cert_label: str, cert: str | Path, key_label: str, key: str | Path) -> tuple[Path, Path]:
    """A certificate and its private key (unencrypted: Mosquitto cannot ask for a passphrase)."""
    cert_file, key_file = _readable(cert_label, cert), _readable(key_label, key)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(cert_file))
    except ssl.SSLError:
        raise ValueError(f"{cert_label} {cert_file}: holds no PEM certificate") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(cert_file), str(key_file), password=_asks_passphrase)
    except _Encrypted:
        raise ValueError(f"{key_label} {key_file}: the key is protected by a passphrase, which Mosquitto cannot "
                         "ask for; give it an unencrypted copy (mode 0600)") from None
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            raise ValueError(f"{key_label} {key_file} is not the private key of {cert_label} {cert_file}") from None
        raise ValueError(f"{key_label} {key_file}: holds no PEM private key") from None
    return cert_file, key_file


def client_context(ca: str | Path, cert: str | Path | None = None, key: str | Path | None = None) -> ssl.SSLContext:
    """How a centre's bridge or the aggregator connects: the broker's certificate must come from
    ``ca`` and name the host (as Mosquitto's ``bridge_insecure false`` and paho's defaults check)."""
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


def handshake(host: str, port: int, ca: str | Path, cert: str | Path | None = None, key: str | Path | None = None,
              timeout: float = 3.0) -> tuple[str, str]:
    """A TLS handshake with ``host:port`` trusting only ``ca``: ``("ok", "")``, ``("unreachable",
    why)`` (no TCP connection: nothing is known yet), ``("untrusted", why)`` (the certificate failed
    verification, or does not name ``host``) or ``("failed", why)`` (any other TLS failure, e.g. a
    listener that does not speak TLS)."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        return "unreachable", f"cannot reach {host}:{port} ({error.strerror or error})"
    with sock:
        try:
            client_context(ca, cert, key).wrap_socket(sock, server_hostname=host).close()
        except ssl.SSLCertVerificationError as error:
            return "untrusted", f"the broker's certificate is not trusted ({error.verify_message})"
        except (ssl.SSLError, OSError) as error:
            return "failed", f"the TLS handshake failed ({error})"
    return "ok", ""


def diagnose(host: str, port: int, ca: str | Path | None, timeout: float = 5.0) -> str:
    """Why the aggregator's MQTT connection to ``host:port`` fails: with a CA, a TLS handshake made
    as its client makes it; without one, a probe for a TLS listener."""
    if ca is not None:
        outcome, why = handshake(host, port, ca, timeout=timeout)
        if outcome == "untrusted":
            return f"TLS: {why}; is --tls-ca {ca} the CA that signed it, and is {host} a name in it?"
        if outcome == "failed":
            return f"TLS: {why}; is {host}:{port} the broker's TLS listener?"
        return why or "TLS is fine, the broker closed the MQTT connection (see the broker's log)"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        return f"cannot reach {host}:{port} ({error.strerror or error})"
    with sock:
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        probe.check_hostname = False
        probe.verify_mode = ssl.CERT_NONE  # only to learn whether the listener speaks TLS at all
        try:
            probe.wrap_socket(sock, server_hostname=host).close()
        except (ssl.SSLError, OSError):
            return "the broker accepted the connection and closed it (see the broker's log)"
        return "the broker speaks TLS: give --tls-ca, the CA that signed its certificate"
