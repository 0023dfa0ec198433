"""Getting and recognising the released models: ``sasnet models download`` against bad names, a
closed port, server errors, wrong and cut-short files (from a server on 127.0.0.1, never the
internet: every download case passes ``--url`` or is refused before any transfer), and
``sasnet models add`` of files that only look like the released ones."""
from __future__ import annotations

import http.server
import json
import socket
import threading

from hostile import ACCEPTED, Case, Ctx, write_input

_server = None


def _url(route: str) -> str:
    """An address on a loopback server started once for the corpus: /404 and /500 answer with
    that status, /junk sends a small file that is not a checkpoint, /short announces 100 kB and
    sends 1 kB."""
    global _server
    if _server is None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                route = self.path.strip("/").split("/")[0]
                if route.isdigit():
                    self.send_error(int(route))
                    return
                self.send_response(200)
                self.send_header("Content-Length", "100000" if route == "short" else "1000")
                self.end_headers()
                self.wfile.write(b"x" * 1000)
                self.close_connection = True

            def log_message(self, *args):
                pass

        _server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=_server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{_server.server_address[1]}/{route}/SHHA.pth"


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/SHHA.pth"


def _nothing_registered_or_left(ctx: Ctx, result) -> None:
    from sasnet_core.util import paths
    from sasnet_core.weights.registry import ModelRegistry

    assert ModelRegistry().entries() == [], result.err
    folder = paths.models_dir()
    assert not folder.exists() or list(folder.iterdir()) == [], list(folder.iterdir())
    assert len(result.err.strip().splitlines()) == 1, result.err


def _download(args, names):
    return lambda ctx: (["models", "download", *args], names)


def _with_url(route_or_url, *names):
    def make(ctx):
        url = route_or_url if "://" in route_or_url or route_or_url == "closed" else _url(route_or_url)
        url = _closed_port() if url == "closed" else url
        return ["models", "download", "shha", "--url", url], [*names]
    return make


def _identity_is(name: str, status: str, forbidden: str | None = None):
    def check(ctx: Ctx, result) -> None:
        from sasnet_core.weights.registry import ModelRegistry

        entry = ModelRegistry().get(name)
        assert entry is not None and entry.identity["status"] == status, result.out
        if status == "modified":
            assert "modified" in result.err and "warning" in result.err, result.err
        if forbidden:
            assert forbidden not in result.out + entry.identity["description"], result.out
    return check


def _copy_named(file_name: str):
    def make(ctx):
        target = ctx.tmp / file_name
        target.write_bytes(ctx.weights.read_bytes())
        return ["models", "add", "m", target], []
    return make


def _in_the_way(ctx):
    write_input(ctx.tmp / "SHHA.pth", b"a person's own file")
    return ["models", "download", "shha", "--to", ctx.tmp, "--url", _closed_port()], ["SHHA.pth", "in the way"]


def _untouched(ctx, result):
    assert (ctx.tmp / "SHHA.pth").read_bytes() == b"a person's own file"


def _name_taken(ctx):
    from sasnet_core.weights.registry import ModelRegistry

    ModelRegistry().add("shha", ctx.weights)
    return ["models", "download", "shha", "--url", _closed_port()], ["'shha'", "registered already"]


def _to_a_file(ctx):
    write_input(ctx.tmp / "afile", "x")
    return ["models", "download", "shha", "--to", ctx.tmp / "afile"], ["afile"]


def _damaged_identity(ctx):
    from hostile import weights as W

    W.write_registry({"version": 1, "default": "m",
                      "models": {"m": {"path": str(ctx.weights), "identity": ["verified"]}}})
    return ["models", "list"], []


def _reports_damaged_identity(ctx, result):
    assert "'m'" in result.err and "identity" in result.err, result.err


def _forged_identity(ctx):
    """A registry entry edited to say 'verified' for a file that is not released: the stored
    identity's size and time do not match the file, so it is hashed again."""
    from hostile import weights as W

    W.write_registry({"version": 1, "default": "m", "models": {"m": {
        "path": str(ctx.weights), "kind": "ours",
        "identity": {"status": "verified", "released": "shha", "sha256": "0" * 64, "size": 1, "mtime": 0.0}}}})
    return ["models", "list", "--json"], []


def _not_verified(ctx, result):
    assert json.loads(result.out.splitlines()[0])["identity"]["status"] == "other", result.out


CASES = [
    Case("download-unknown-model", _download(["shhc"], ["shhc"])),
    Case("download-no-model", _download([], ["model"])),
    Case("download-bad-name", _download(["shha", "--name", "../evil"], ["../evil"]),
         check=_nothing_registered_or_left),
    Case("download-closed-port", _with_url("closed", "127.0.0.1", "offline", "sasnet models add"),
         check=_nothing_registered_or_left),
    Case("download-ftp-url", _with_url("ftp://127.0.0.1/SHHA.pth", "ftp://"), check=_nothing_registered_or_left),
    Case("download-404", _with_url("404", "404"), check=_nothing_registered_or_left),
    Case("download-500", _with_url("500", "500"), check=_nothing_registered_or_left),
    Case("download-wrong-file", _with_url("junk", "not the released SHHA.pth", "nothing was registered"),
         check=_nothing_registered_or_left),
    # 100,000 bytes announced for a 155 MB file: not the released file, refused before its body.
    Case("download-cut-short", _with_url("short", "announces 100,000 bytes", "not the released SHHA.pth"),
         check=_nothing_registered_or_left),
    Case("download-file-in-the-way", _in_the_way, check=_untouched),
    Case("download-name-taken", _name_taken),
    Case("download-to-a-file", _to_a_file),
    Case("add-not-released-named-SHHA", _copy_named("SHHA.pth"), expect=ACCEPTED,
         check=_identity_is("m", "modified")),
    Case("add-not-released-named-shhb-lowercase", _copy_named("shhb.pth"), expect=ACCEPTED,
         check=_identity_is("m", "modified")),
    Case("add-shha-in-the-name-is-not-a-claim", _copy_named("my_shha_finetune.pth"), expect=ACCEPTED,
         check=_identity_is("m", "other", forbidden="ShanghaiTech")),
    Case("registry-identity-not-an-object", _damaged_identity, expect=ACCEPTED, check=_reports_damaged_identity),
    Case("registry-forged-verified-identity", _forged_identity, expect=ACCEPTED, check=_not_verified),
]
