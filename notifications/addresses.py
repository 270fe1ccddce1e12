"""Where a webhook may post: public addresses only, so that a channel can not be pointed at
this machine, the private network or a cloud metadata service (server-side request
forgery). Hosts an admin lists in HITL_WEBHOOK_ALLOWED_HOSTS are allowed anyway.

An address is checked as written when a channel is saved, and again when a message is
sent: then its name is resolved once, every address it resolves to is checked, and the
post connects to those checked addresses (transports.py), never to a second lookup that
could answer differently (DNS rebinding).
"""

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = ("http", "https")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# inet_aton's forms of an IPv4 address, which resolvers accept too: 1 to 4 parts, each
# decimal, 0x-hex or 0-octal, the last filling the bytes left (127.1, 0x7f.1, 2130706433).
_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")
HOW_TO_ALLOW = "Webhooks go to public addresses only; an admin may allow this host with HITL_WEBHOOK_ALLOWED_HOSTS."


class AddressRefused(Exception):
    """A webhook address inside the network, or not http(s); `str()` says which and why."""


def _ipv4_any_form(host: str) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.fullmatch(part) for part in parts):
        return None
    numbers = [int(part, 16) if part[:2].lower() == "0x" else int(part, 8) if part.startswith("0") else int(part) for part in parts]
    *leading, last = numbers
    if any(number > 255 for number in leading) or last >= 256 ** (5 - len(parts)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def ip_literal(host: str) -> IPAddress | None:
    """The address `host` spells, in any form a resolver would read as one; None for a name."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) names no other host
    except ValueError:
        return _ipv4_any_form(host)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, IPv4-compatible): it is
    where the packets end up."""
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address in _NAT64 or (address.packed[:12] == bytes(12) and int(address) > 0xFFFF):
        return ipaddress.IPv4Address(address.packed[12:])
    return None


def inside(address: IPAddress) -> str:
    """Why `address` is inside the network ("a loopback address", …), or "" for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and (carried := _embedded_ipv4(address)):
        return inside(carried)
    if address.is_unspecified:
        return "the unspecified address (this machine)"
    if address.is_loopback:
        return "a loopback address (this machine)"
    if address.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if address in _CGNAT:
        return "a carrier-grade NAT address (100.64.0.0/10)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private network address"
    if not address.is_global:
        return "not a public address"
    return ""


def _allowed() -> tuple[set[str], set[IPAddress]]:
    hosts = set(settings.HITL_WEBHOOK_ALLOWED_HOSTS)
    return hosts, {address for host in hosts if (address := ip_literal(host))}


def _host_of(url: str) -> tuple[str, object]:
    """(normalised host, parts) of a webhook address that is http(s) with a host."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise AddressRefused("Refused: this is not a valid address.") from None
    if parts.scheme.lower() not in SCHEMES:
        raise AddressRefused(f"Refused: only http:// and https:// addresses are accepted, not {parts.scheme or 'none'}.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise AddressRefused("Refused: the address names no host.")
    return host, parts


def url_check(url: str) -> None:
    """Refuse `url` (AddressRefused) unless it is http(s) to a host that is not inside the
    network as written: an address, `localhost` or a name under it. What a name resolves
    to is checked when sending (`target_resolve`): it may change after the channel is saved."""
    host, _ = _host_of(url)
    names, addresses = _allowed()
    if host in names:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise AddressRefused(f"Refused: {host} is this machine (localhost). {HOW_TO_ALLOW}")
    address = ip_literal(host)
    if address is not None and address not in addresses and (why := inside(address)):
        raise AddressRefused(f"Refused: {host} is {why}. {HOW_TO_ALLOW}")


@dataclass(frozen=True)
class Target:
    """Where one post goes: the URL's host (the Host header, and the name TLS checks) and
    the addresses checked for it, which are the only ones connected to."""

    scheme: str
    host: str
    port: int
    path: str  # with the query
    addresses: list[tuple]  # (family, sockaddr) as getaddrinfo answers


def target_resolve(url: str) -> Target:
    """Check `url`, resolve its host once and check every address it resolves to.
    AddressRefused when any is inside the network; socket.gaierror when the name does not
    resolve."""
    url_check(url)
    host, parts = _host_of(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    names, allowed = _allowed()
    literal = ip_literal(host)
    if literal is not None:  # never handed to a resolver: checked above as written
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        sockaddr = (str(literal), port, 0, 0) if literal.version == 6 else (str(literal), port)
        return Target(scheme, host, port, path, [(family, sockaddr)])
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses = []
    for family, _, _, _, sockaddr in answers:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ip_literal(sockaddr[0])
        if host not in names and address not in allowed and (why := inside(address)):
            raise AddressRefused(f"Refused: {host} resolves to {sockaddr[0]}, {why}. {HOW_TO_ALLOW}")
        if (family, sockaddr) not in addresses:
            addresses.append((family, sockaddr))
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "no IPv4 or IPv6 address")
    return Target(scheme, host, port, path, addresses)
