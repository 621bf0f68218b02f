"""Will a ticket's QR link open on a visitor's phone? Checked before ``luot server`` starts.

Every ticket carries ``{public_url}/t/{token}``. A ``public_url`` of ``http://127.0.0.1:8080``, a
name that resolves only to this box (Debian maps the box's own host name to 127.0.1.1), a port
that is not the one served, or a web server listening on loopback all print QR codes that open
nothing on a phone, and nobody notices until visitors complain. So ``luot server`` refuses to
start with a plain Vietnamese and English reason, unless the centre file says
``[centre] single_box = true`` (everything on one machine, no phone expected to follow a ticket).

When ``--port`` overrides the configured port and ``public_url`` names the configured port, the
URL follows the override (the operator moved the server, not the link's meaning); a URL naming
some other port is refused. An ``https://`` URL is served by a TLS proxy in front of the server,
so its port is the proxy's and is not compared.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from luot.config import CentreConfig, ConfigError

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


@dataclass(frozen=True)
class Reachable:
    """The outcome of a successful check: the config to run (``public_url`` possibly moved to the
    served port) and notes for the operator."""

    config: CentreConfig
    notes: tuple[str, ...] = ()


def _refuse(vi: str, en: str) -> ConfigError:
    return ConfigError(f"{vi}\n{en}")


def unroutable(address: str) -> bool:
    """True for an address no other machine can reach: loopback, unspecified, link-local,
    multicast or reserved."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip.is_multicast or ip.is_reserved


def resolve(host: str) -> list[str]:
    """Every address ``host`` resolves to on this box (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host_problem(host: str) -> tuple[str, str] | None:
    """Why phones could not reach ``host`` (vi, en), or None when some other machine can."""
    if host.lower() in LOCAL_NAMES or (_is_ip(host) and ipaddress.ip_address(host).is_loopback):
        return (f"'{host}' là chính máy này, điện thoại không tới được",
                f"'{host}' is this machine itself; phones cannot reach it")
    if _is_ip(host):
        if unroutable(host):
            return (f"'{host}' không phải địa chỉ mà máy khác trong mạng tới được",
                    f"'{host}' is not an address other machines can reach")
        return None
    addresses = resolve(host)
    if not addresses:
        return (f"máy chủ không phân giải được tên '{host}'",
                f"this box cannot resolve the name '{host}'")
    if all(unroutable(a) for a in addresses):
        return (f"tên '{host}' chỉ trỏ về chính máy này ({', '.join(addresses)}); sửa /etc/hosts hoặc dùng địa chỉ IP trong mạng LAN",
                f"the name '{host}' resolves only to this machine ({', '.join(addresses)}); fix /etc/hosts or use the LAN IP address")
    return None


def url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def with_port(url: str, port: int) -> str:
    """``url`` with its port replaced (IPv6 literals keep their brackets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + f":{port}"
    if parts.username:
        netloc = parts.username + "@" + netloc
    return parts._replace(netloc=netloc).geturl()


def check(config: CentreConfig, listen_host: str, port: int) -> Reachable:
    """Check that QR links will open from the hall when the server listens on ``listen_host:port``.

    Returns the config to run (``public_url`` moved to ``port`` when it named the configured one)
    or raises :class:`ConfigError` with the reason in Vietnamese then English.
    """
    url = config.centre.public_url
    parts = urlsplit(url)
    notes: list[str] = []
    if parts.scheme == "http" and url_port(url) != port:
        if url_port(url) == config.http.port:
            moved = with_port(url, port)
            notes.append(f"public_url theo cổng {port} / public_url follows port {port}: {moved}")
            config = config.model_copy(update={"centre": config.centre.model_copy(update={"public_url": moved})})
            url = moved
        else:
            raise _refuse(
                f"[centre] public_url {url} dùng cổng {url_port(url)}, nhưng máy chủ phục vụ ở cổng {port}: mã QR trên phiếu sẽ không mở được.",
                f"[centre] public_url {url} names port {url_port(url)} but the server listens on port {port}: ticket QR codes would open nothing.")
    if config.centre.single_box:
        return Reachable(config, tuple(notes))
    problem = _host_problem(parts.hostname or "")
    if problem is not None:
        raise _refuse(
            f"[centre] public_url {url}: {problem[0]}, nên mã QR trên phiếu không mở được. "
            "Đặt public_url là địa chỉ của máy chủ trong mạng LAN của trung tâm, ví dụ http://192.168.1.10:8080; "
            "nếu mọi thiết bị chạy trên một máy duy nhất, đặt [centre] single_box = true.",
            f"[centre] public_url {url}: {problem[1]}, so ticket QR codes would open nothing. "
            "Set public_url to the server's address on the centre's LAN, e.g. http://192.168.1.10:8080; "
            "if every device runs on this one machine, set [centre] single_box = true.")
    if listen_host.lower() in LOCAL_NAMES or (_is_ip(listen_host) and unroutable(listen_host)
                                               and not ipaddress.ip_address(listen_host).is_unspecified):
        raise _refuse(
            f"máy chủ web chỉ nghe trên {listen_host} (chính máy này): điện thoại và thiết bị khác không tới được. "
            "Đặt [http] host = \"0.0.0.0\" (mọi giao diện mạng) hoặc địa chỉ LAN của máy; "
            "nếu mọi thiết bị chạy trên một máy duy nhất, đặt [centre] single_box = true.",
            f"the web server would listen only on {listen_host} (this machine): phones and other devices cannot reach it. "
            "Set [http] host = \"0.0.0.0\" (all interfaces) or the box's LAN address; "
            "if every device runs on this one machine, set [centre] single_box = true.")
    return Reachable(config, tuple(notes))
