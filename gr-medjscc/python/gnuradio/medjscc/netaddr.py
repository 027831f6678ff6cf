"""ZMQ endpoint checks for ``medjscc tx/rx --zmq`` and ``--snr-address`` (and the Python API).

``check_zmq_address`` turns a bad endpoint into one clear line instead of ZMQ's
``RuntimeError: Invalid argument`` from inside a block constructor, and warns (once per address
and process) when a socket is *bound* to a non-loopback interface: the IQ stream and the SNR
feedback then reach anyone on the network, unauthenticated and unencrypted.
"""
from __future__ import annotations

import ipaddress
import logging
import re

from .errors import InputError

log = logging.getLogger(__name__)

SCHEMES = ("tcp", "ipc", "inproc")
_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$")
_LOOPBACK_NAMES = ("localhost", "ip6-localhost", "ip6-loopback")
_warned: set[str] = set()


def _host_port(rest: str, address: str, what: str) -> tuple[str, int]:
    if rest.startswith("["):                       # [IPv6]:port
        host, sep, port = rest[1:].partition("]:")
        if not sep:
            raise InputError(f"{what}: {address!r} is not a ZMQ address: IPv6 hosts are written "
                             f"tcp://[::1]:5555")
    else:
        host, sep, port = rest.rpartition(":")
        if not sep:
            raise InputError(f"{what}: {address!r} has no port (expected tcp://HOST:PORT, "
                             f"e.g. tcp://127.0.0.1:5555)")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InputError(f"{what}: {address!r}: port must be a number in 1..65535, got {port!r}")
    if host != "*":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not _HOST_RE.match(host):
                raise InputError(f"{what}: {address!r}: {host!r} is not a host name, an IP address "
                                 f"or '*'") from None
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False   # '*' and other names may resolve to any interface


def check_zmq_address(address: str, *, bind: bool, what: str = "ZMQ address") -> str:
    """Validate ``tcp://HOST:PORT`` | ``ipc://PATH`` | ``inproc://NAME``; returns it unchanged.

    ``bind``: this side binds (ZMQ PUSH sink of ``tx``, SNR PUB of ``rx``): a non-loopback host
    logs a warning, once per address.
    """
    if not isinstance(address, str) or "://" not in address:
        raise InputError(f"{what}: {address!r} is not a ZMQ address (expected tcp://HOST:PORT, "
                         f"e.g. tcp://127.0.0.1:5555, or ipc://PATH)")
    scheme, rest = address.split("://", 1)
    if scheme not in SCHEMES:
        raise InputError(f"{what}: {address!r}: transport must be one of {', '.join(SCHEMES)}, "
                         f"got {scheme!r}")
    if not rest:
        raise InputError(f"{what}: {address!r} has nothing after {scheme}://")
    if scheme != "tcp":
        return address
    host, _ = _host_port(rest, address, what)
    if host == "*" and not bind:
        raise InputError(f"{what}: {address!r}: '*' (all interfaces) is for binding; give the "
                         f"sender's host, e.g. tcp://127.0.0.1:5555")
    if bind and not is_loopback(host) and address not in _warned:
        _warned.add(address)
        log.warning("%s: binding %s exposes the link to the network (no authentication, no "
                    "encryption); use tcp://127.0.0.1:PORT unless another machine must connect",
                    what, address)
    return address


def free_loopback_port() -> int:
    """A free TCP port on 127.0.0.1, picked at random below the kernel's ephemeral range.

    ``bind(0)`` hands out an ephemeral port: the range every outgoing connection (other jobs' ZMQ
    links, a socket retrying a connect) draws from, so the port can be taken between the check and
    the bind. A random pick below that range keeps concurrent runs (tests, benches) apart."""
    import random
    import socket
    from pathlib import Path

    try:
        lo = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        lo = 32768
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20000, max(lo, 20001))
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port on 127.0.0.1")
