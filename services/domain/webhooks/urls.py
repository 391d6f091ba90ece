"""Server-side request forgery guard for webhook URLs.

A URL must be https (plain http only when WEBHOOK_ALLOW_HTTP is set, for development), and
every address its host resolves to must be public: loopback, private (RFC 1918, unique local),
link-local (which holds the cloud metadata service, 169.254.169.254), carrier-grade NAT,
multicast, reserved and unspecified addresses are refused unless
WEBHOOK_ALLOW_PRIVATE_ADDRESSES is set (local development and tests). The check runs when a
subscription is saved and again before every delivery, so a host that later resolves
elsewhere (DNS rebinding) is still refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from services.domain.webhooks import errors
from shared.config import Settings

# The metadata service of some clouds on IPv6 (unique local, already refused; named for clarity).
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address in _METADATA
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in _SHARED)
        or not address.is_global
    )


def check_scheme(url: str, settings: Settings) -> tuple[str, int]:
    """Host and port of an acceptable URL; raises for a bad scheme or a missing host."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise errors.WebhookUrlNotHttps("The URL must be https://host/...", field="url")
    if parts.scheme == "http" and not settings.webhook_allow_http:
        raise errors.WebhookUrlNotHttps(
            "Webhook URLs must use https; plain http is allowed only in development.",
            field="url",
        )
    if parts.username or parts.password:
        raise errors.WebhookUrlNotHttps("The URL must not carry credentials.", field="url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise errors.WebhookUrlNotHttps("The URL's port is not valid.", field="url") from exc
    return parts.hostname, port


async def check_url(url: str, settings: Settings) -> None:
    """Refuse a URL the server must not call (see the module docstring)."""
    host, port = check_scheme(url, settings)
    if settings.webhook_allow_private_addresses:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise errors.WebhookUrlUnresolvable(f"{host} does not resolve.", field="url") from exc
    addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    refused = sorted(str(a) for a in addresses if not is_public(a))
    if refused or not addresses:
        raise errors.WebhookUrlForbidden(
            f"{host} resolves to a non-public address ({', '.join(refused)}); the server "
            "does not call loopback, private, link-local or metadata addresses.",
            field="url",
        )
