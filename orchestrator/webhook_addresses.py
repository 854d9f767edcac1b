"""Where webhooks may be sent: public addresses only, unless WEBHOOK_ALLOW_PRIVATE=true.

A webhook URL is the caller's choice, and the orchestrator sits inside the fleet's network: without this check a
client could have it POST to the fleet's own services (an agent, the database's host, a cloud metadata endpoint at
169.254.169.254). The host is resolved and every address it resolves to must be public: not loopback, private,
link-local, multicast, reserved or unspecified, IPv4 or IPv6, nor an IPv6 address carrying such an IPv4 one
(IPv4-mapped `::ffff:127.0.0.1`, 6to4 `2002:7f00:1::`). Resolving (rather than reading the URL) also catches names
and spellings that lead to such addresses (`localhost`, `2130706433`).

It is checked at registration and again at each delivery, since a name may resolve elsewhere later; the delivery
then connects to the very address that was checked (orchestrator/webhook_sender.py), so a name whose answer changes
between the check and the connection (DNS rebinding) cannot slip through either.
"""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from shared.errors import InvalidInputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOW_SETTING = "WEBHOOK_ALLOW_PRIVATE"
DEFAULT_PORTS = {"http": 80, "https": 443}


class RefusedAddressError(InvalidInputError):
    """The URL leads to an address webhooks may not be sent to."""


def why_not_public(address: IPAddress) -> str | None:
    """What makes an address unfit for webhooks, in words; None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None and (reason := why_not_public(embedded)):
            return f"{reason} inside the IPv6 address {address}"
        if address.is_site_local:
            return f"{address} is a site-local address"
    checks = [
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),
    ]
    for kind, applies in checks:
        if applies:
            return f"{address} is a {kind} address"
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host resolves to (an IP literal resolves to itself); IPv4 first, as most receivers are."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise InvalidInputError(f"the webhook's host {host!r} does not resolve: {error.strerror}") from None
    # A scoped IPv6 address (fe80::1%eth0) comes with its zone, which ip_address does not read.
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos))
    return sorted(addresses, key=lambda address: address.version)


def url_host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname:
        raise InvalidInputError(f"the webhook URL {url!r} names no host")
    return parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme]


async def checked_address(url: str, *, allow_private: bool) -> IPAddress:
    """The address to send a webhook to: the first its host resolves to, once every one was found public (or
    WEBHOOK_ALLOW_PRIVATE allows any). RefusedAddressError names the address and the setting."""
    host, port = url_host_and_port(url)
    addresses = await resolve(host, port)
    if not allow_private:
        for address in addresses:
            if reason := why_not_public(address):
                raise RefusedAddressError(
                    f"webhooks may not be sent to {host}: {reason}; only public addresses are allowed unless "
                    f"the orchestrator runs with {ALLOW_SETTING}=true"
                )
    return addresses[0]
