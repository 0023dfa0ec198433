"""Web servers that misbehave, on 127.0.0.1 in a thread: what ``sasnet models download --url`` must
survive. One server serves every behaviour; the first part of the path picks it:

/stall     headers with the released length, then nothing
/drip      headers, then one byte every ``DRIP_S`` seconds
/silent    accepts, reads the request, never answers
/garbage   answers bytes that are not HTTP
/hangup    closes the connection without a word
/short     announces the released length, sends 1,000 bytes, closes
/nolength  no Content-Length, 1,000 bytes, closes
/toolarge  announces 400 MB
/toosmall  announces 10 bytes, sends them
/loop      redirects to itself
/<status>  answers that HTTP status (404, 403, 500, 503, ...)
"""
from __future__ import annotations

import http.server
import socketserver
import threading
import time

from sasnet_core.weights.released import RELEASED

DRIP_S = 0.2
_server = None
_lock = threading.Lock()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        kind = self.path.strip("/").split("/")[0]
        size = RELEASED["shha"].size
        try:
            if kind == "silent":
                time.sleep(30)
            elif kind == "garbage":
                self.wfile.write(b"\x00\x01 this is not HTTP at all\r\n\r\n" * 10)
            elif kind == "hangup":
                pass
            elif kind == "loop":
                self.send_response(302)
                self.send_header("Location", self.path)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
            elif kind.isdigit():
                self.send_error(int(kind))
            else:
                self.send_response(200)
                length = {"stall": size, "drip": size, "short": size, "toolarge": 400_000_000,
                          "toosmall": 10}.get(kind)
                if length is not None:
                    self.send_header("Content-Length", str(length))
                self.send_header("Connection", "close")
                self.end_headers()
                if kind == "stall":
                    time.sleep(30)
                elif kind == "drip":
                    for _ in range(int(30 / DRIP_S)):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(DRIP_S)
                elif kind in ("short", "nolength"):
                    self.wfile.write(b"y" * 1000)
                elif kind == "toosmall":
                    self.wfile.write(b"z" * 10)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should
        self.close_connection = True

    def log_message(self, *args):
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def url(kind: str) -> str:
    """The address of behaviour ``kind`` on the shared server (started on first use)."""
    global _server
    with _lock:
        if _server is None:
            _server = _Server(("127.0.0.1", 0), _Handler)
            threading.Thread(target=_server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{_server.server_address[1]}/{kind}/SHHA.pth"
