"""Who a limit counts against: the client's address (an IPv6 client by its /64), the username a
login names, or the user whose token the route's guard verified."""

from __future__ import annotations

import ipaddress

from flask import g, request

from ..web.fields import folded


def client_address() -> str:
    """The socket's address, or the client behind a trusted proxy (see web/middleware.py)."""
    return request.remote_addr or "unknown"


def client_network() -> str:
    """What a per-address limit counts against: the client's IPv4 address, or its IPv6 /64 (one
    client commonly holds a whole /64, and could otherwise take a new budget per address)."""
    address = client_address()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return address


def login_username() -> str:
    """The username a login attempt names, folded: a spread of addresses against one name counts together."""
    name = request.form.get("username")
    if name is None:
        body = request.get_json(silent=True)
        name = body.get("username") if isinstance(body, dict) else None
    return "username:" + (folded(name)[:256] if isinstance(name, str) else "-")


def current_user_or_address() -> str:
    """The user whose token the route's guard verified, or the address for anonymous (public relay) calls."""
    identity = g.get("account_id")  # set by auth/guard.py once a token verified
    return f"user:{identity}" if identity is not None else f"address:{client_network()}"
