"""``sasnet models download --url`` against servers that misbehave (``hostile.servers``) and addresses
that are not addresses: one line that says what happened, within a stated time, and nothing
registered or left in the models folder. Never the internet: every server is on 127.0.0.1."""
from __future__ import annotations

import socket

from hostile import REFUSED, Case, Ctx, servers

# Short deadlines so each case ends in seconds: 1 s of silence, 2 s under the stall rule.
DEADLINES = ["--timeout", "1", "--stall-after", "2", "--no-progress"]


def _download(url: str) -> list:
    return ["models", "download", "shha", "--url", url, *DEADLINES]


def _nothing_kept(ctx: Ctx, result) -> None:
    from sasnet_core.util import paths
    from sasnet_core.weights.registry import ModelRegistry

    assert len(result.err.strip().splitlines()) == 1, result.err
    assert ModelRegistry().entries() == []
    assert not (paths.models_dir() / "SHHA.pth").exists()


def _server_case(kind: str, *names: str) -> Case:
    return Case(f"server-{kind}", lambda ctx: (_download(servers.url(kind)), list(names)), REFUSED,
                _nothing_kept, timeout=60.0)


def _address_case(name: str, address: str, *names: str) -> Case:
    return Case(f"address-{name}", lambda ctx: (_download(address), [repr(address), "--url", *names]),
                REFUSED, _nothing_kept)


def _refused_port(ctx: Ctx):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return _download(f"http://127.0.0.1:{port}/SHHA.pth"), ["connection refused", "offline"]


CASES = [
    _server_case("stall", "stalled", "nothing arrived for 1 s", "again resumes it"),
    _server_case("drip", "stalled", "in the last 2 s"),
    _server_case("silent", "no answer within the time limit"),
    _server_case("garbage", "did not answer as a web server does"),
    _server_case("hangup", "did not answer as a web server does"),
    _server_case("short", "cut short after 0.0 of 155.7 MB"),
    _server_case("nolength", "cut short after 0.0 of 155.7 MB"),
    _server_case("toolarge", "announces 400,000,000 bytes", "not the released SHHA.pth"),
    _server_case("toosmall", "announces 10 bytes", "not the released SHHA.pth"),
    _server_case("loop", "too many redirects"),
    _server_case("404", "answered 404"),
    _server_case("403", "answered 403"),
    _server_case("500", "answered 500"),
    _server_case("503", "answered 503"),
    Case("server-refused", _refused_port, REFUSED, _nothing_kept),
    _address_case("unclosed-ipv6", "http://[::1", "not a valid address"),
    _address_case("ftp", "ftp://example.com/SHHA.pth", "only http and https"),
    _address_case("no-host", "http://", "names no host"),
    _address_case("port-out-of-range", "http://example.com:99999/SHHA.pth", "not a valid address"),
    _address_case("port-not-a-number", "http://example.com:abc/SHHA.pth", "not a valid address"),
    _address_case("port-zero", "http://example.com:0/SHHA.pth", "port 0"),
    _address_case("words", "not an address", "spaces"),
    _address_case("space-in-host", "http://exa mple.com/SHHA.pth", "spaces"),
    _address_case("file-scheme", "file:///etc/passwd", "only http and https"),
    _address_case("empty", "", "only http and https"),
    _address_case("control-character", "http://example.com/\x07SHHA.pth", "control characters"),
]
