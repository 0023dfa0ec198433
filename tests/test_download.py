"""``sasnet models download``: the whole flow against a server on 127.0.0.1, never the internet.

The server hands out a small stand-in checkpoint whose hash the test gives ``released.RELEASED``;
the download address comes from ``SASNET_RELEASED_URL_SHHA`` as a mirror's would.
"""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import socket
import sys
import threading
import time
import types

import pytest
import torch

from sasnet_core.cli import main
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.sasnet import SASNet
from sasnet_core.util import paths
from sasnet_core.weights import released
from sasnet_core.weights.checkpoint import save_checkpoint
from sasnet_core.weights.download import staging_dir
from sasnet_core.weights.registry import ModelRegistry


class Server:
    """Serves ``body`` at any path; ``mode``: "good" (honours Range), "truncate" (announces the
    whole length, sends half, closes), "drip" (the length, then one byte every 0.1 s), "endless"
    (no length: the body, then zeros until the client gives up), or an HTTP status to answer with."""

    def __init__(self, body: bytes):
        self.body, self.mode, self.requests = body, "good", []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                outer.requests.append(dict(self.headers))
                if isinstance(outer.mode, int):
                    self.send_error(outer.mode)
                    return
                if outer.mode in ("drip", "endless"):
                    self._misbehave()
                    return
                start = 0
                if outer.mode == "good" and self.headers.get("Range", "").startswith("bytes="):
                    start = int(self.headers["Range"][6:].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(outer.body) - 1}/{len(outer.body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(outer.body) - start))
                self.end_headers()
                data = outer.body[start:]
                self.wfile.write(data[: len(data) // 2] if outer.mode == "truncate" else data)
                self.close_connection = True

            def _misbehave(self):
                self.send_response(200)
                if outer.mode == "drip":
                    self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                try:
                    if outer.mode == "drip":
                        for byte in outer.body[:300]:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(0.1)
                    else:
                        self.wfile.write(outer.body)
                        while True:
                            self.wfile.write(bytes(65536))
                            outer.sent_after_body += 65536
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.sent_after_body = 0
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/SHHA.pth"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """A small checkpoint that counts as the released SHHA.pth; returns its bytes."""
    torch.manual_seed(0)
    path = tmp_path / "src" / "stand_in.pth"
    path.parent.mkdir()
    save_checkpoint(path, SASNet(SASNetConfig(width_mult=0.125)), {"name": "tiny"})
    data = path.read_bytes()
    fake = dataclasses.replace(released.RELEASED["shha"], sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    monkeypatch.setitem(released.RELEASED, "shha", fake)
    return data


@pytest.fixture
def server(stand_in, monkeypatch):
    s = Server(stand_in)
    monkeypatch.setenv("SASNET_RELEASED_URL_SHHA", s.url)
    yield s
    s.close()


def _cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _leftovers():
    """Files in the models folder and the download staging folder."""
    found = []
    for folder in (paths.models_dir(), staging_dir()):
        if folder.exists():
            found += sorted(p.name for p in folder.iterdir())
    return found


def test_a_good_download_is_verified_moved_into_the_models_folder_registered_and_made_default(
        server, stand_in, capsys):
    code, out, err = _cli(["models", "download", "shha"], capsys)
    assert code == 0, err
    entry = ModelRegistry().get("shha")
    assert entry.is_default
    assert entry.path == paths.models_dir() / "SHHA.pth"
    assert entry.path.read_bytes() == stand_in
    assert entry.identity["status"] == "verified"
    assert "SASNet SHHA (released by the authors, verified)" in out
    assert _leftovers() == ["SHHA.pth"]  # no staging or partial file anywhere


def test_no_default_keeps_the_registry_without_a_default(server, capsys):
    assert _cli(["models", "download", "shha", "--no-default"], capsys)[0] == 0
    reg = ModelRegistry()
    assert reg.default() is None and reg.get("shha") is not None


def test_an_existing_default_stays_the_default(server, tmp_path, capsys):
    torch.manual_seed(3)
    mine = tmp_path / "mine.pth"
    save_checkpoint(mine, SASNet(SASNetConfig(width_mult=0.125)), {"name": "mine"})
    ModelRegistry().add("mine", mine)
    assert _cli(["models", "download", "shha"], capsys)[0] == 0
    assert ModelRegistry().default().name == "mine"


def test_download_to_another_folder_under_another_name(server, tmp_path, capsys):
    folder = tmp_path / "weights"
    code, _, err = _cli(["models", "download", "shha", "--to", folder, "--name", "dense"], capsys)
    assert code == 0, err
    assert ModelRegistry().get("dense").path == folder / "SHHA.pth"


def test_a_file_with_the_wrong_hash_is_deleted_and_nothing_is_registered(server, capsys):
    server.body = server.body[:-10] + b"0123456789"  # same size, other bytes
    code, out, err = _cli(["models", "download", "shha"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "not the released SHHA.pth" in err and "nothing was registered" in err
    assert ModelRegistry().entries() == []
    assert _leftovers() == []


def test_a_transfer_cut_short_leaves_nothing_and_a_rerun_resumes_it(server, stand_in, capsys):
    server.mode = "truncate"
    code, _, err = _cli(["models", "download", "shha"], capsys)
    assert code == 2 and "cut short" in err and "again" in err
    assert ModelRegistry().entries() == []
    assert not paths.models_dir().exists() or list(paths.models_dir().iterdir()) == []
    server.mode = "good"
    code, _, err = _cli(["models", "download", "shha"], capsys)
    assert code == 0, err
    assert server.requests[-1].get("Range") == f"bytes={len(stand_in) // 2}-"  # resumed, not restarted
    entry = ModelRegistry().get("shha")
    assert entry.path.read_bytes() == stand_in and entry.identity["status"] == "verified"


def test_a_server_that_ignores_ranges_restarts_the_transfer(server, stand_in, capsys):
    server.mode = "truncate"
    assert _cli(["models", "download", "shha"], capsys)[0] == 2
    server.mode = "whole"  # answers a range request with the whole file (200)
    code, _, err = _cli(["models", "download", "shha"], capsys)
    assert code == 0, err
    assert ModelRegistry().get("shha").path.read_bytes() == stand_in


@pytest.mark.parametrize("status", [404, 500])
def test_a_server_error_is_one_sentence_with_the_manual_steps(server, status, capsys):
    server.mode = status
    code, _, err = _cli(["models", "download", "shha"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert f"answered {status}" in err and released.DRIVE_FOLDER_URL in err
    assert ModelRegistry().entries() == [] and _leftovers() == []


def test_offline_says_so_in_one_sentence_with_the_manual_steps(stand_in, monkeypatch, capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("SASNET_RELEASED_URL_SHHA", f"http://127.0.0.1:{port}/SHHA.pth")
    code, _, err = _cli(["models", "download", "shha"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "offline" in err and released.DRIVE_FOLDER_URL in err
    assert "sasnet models add shha SHHA.pth" in err and "drag the file onto the app's window" in err


def test_a_silent_server_times_out_instead_of_hanging(stand_in, monkeypatch):
    from sasnet_core.util.errors import DownloadError
    from sasnet_core.weights.download import download_released

    with socket.socket() as s:  # accepts connections (backlog) but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        url = f"http://127.0.0.1:{s.getsockname()[1]}/SHHA.pth"
        with pytest.raises(DownloadError, match="no answer"):
            download_released("shha", url=url, timeout=0.5)
    assert ModelRegistry().entries() == []


def test_a_released_file_already_in_place_is_registered_without_downloading(server, stand_in, capsys):
    paths.models_dir().mkdir(parents=True)
    (paths.models_dir() / "SHHA.pth").write_bytes(stand_in)
    assert _cli(["models", "download", "shha"], capsys)[0] == 0
    assert server.requests == [] and ModelRegistry().get("shha").identity["status"] == "verified"


def test_another_file_in_the_way_is_left_alone(server, capsys):
    paths.models_dir().mkdir(parents=True)
    mine = paths.models_dir() / "SHHA.pth"
    mine.write_bytes(b"my own file")
    code, _, err = _cli(["models", "download", "shha"], capsys)
    assert code == 2 and "in the way" in err and str(mine) in err
    assert mine.read_bytes() == b"my own file" and server.requests == []


def test_google_drive_goes_through_gdown_and_is_verified_the_same_way(stand_in, monkeypatch, capsys):
    """Without an address the file is looked up in the authors' Drive folder; gdown is replaced
    by a fake so nothing leaves this machine."""
    monkeypatch.delenv("SASNET_RELEASED_URL_SHHA", raising=False)
    calls = {}

    def download_folder(id=None, skip_download=False, quiet=False, timeout=None):
        calls["folder"] = id
        return [types.SimpleNamespace(id="file-b", path="models/SHHB.pth"),
                types.SimpleNamespace(id="file-a", path="models/SHHA.pth")]

    def download(url=None, output=None, quiet=False, id=None, resume=False, progress=None, timeout=None):
        calls["file"], calls["resume"], calls["timeout"] = id, resume, timeout
        with open(output, "wb") as fh:
            fh.write(stand_in)
        progress(len(stand_in), len(stand_in))
        return output

    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download=download, download_folder=download_folder))
    code, _, err = _cli(["models", "download", "shha"], capsys)
    assert code == 0, err
    assert calls == {"folder": released.DRIVE_FOLDER_ID, "file": "file-a", "resume": True, "timeout": 10.0}
    assert ModelRegistry().get("shha").identity["status"] == "verified"


def test_drive_unreachable_is_the_same_offline_sentence(stand_in, monkeypatch, capsys):
    import requests

    monkeypatch.delenv("SASNET_RELEASED_URL_SHHA", raising=False)

    def unreachable(**kwargs):
        raise requests.ConnectionError("Failed to resolve 'drive.google.com' (Name or service not known)")

    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download=unreachable, download_folder=unreachable))
    code, _, err = _cli(["models", "download", "shha"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "cannot reach drive.google.com (its name cannot be looked up)" in err and "offline" in err


def test_without_gdown_the_message_says_how_to_install_it(stand_in, monkeypatch, capsys):
    monkeypatch.delenv("SASNET_RELEASED_URL_SHHA", raising=False)
    monkeypatch.setitem(sys.modules, "gdown", None)  # import gdown -> ImportError
    code, _, err = _cli(["models", "download", "shha"], capsys)
    assert code == 2 and "pip install gdown" in err and released.DRIVE_FOLDER_URL in err


def test_download_progress_reaches_the_callback(server, stand_in):
    from sasnet_core.weights.download import download_released

    seen = []
    download_released("shha", progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (len(stand_in), len(stand_in))


def test_drive_refusing_the_file_is_not_called_offline(stand_in, monkeypatch, capsys):
    monkeypatch.delenv("SASNET_RELEASED_URL_SHHA", raising=False)

    class FileURLRetrievalError(Exception):  # as gdown names Drive's "too many downloads" page
        pass

    def refused(**kwargs):
        raise FileURLRetrievalError("Too many users have viewed or downloaded this file recently.")

    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download=refused, download_folder=refused))
    code, _, err = _cli(["models", "download", "shha"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "Google Drive did not hand out SHHA.pth (Too many users" in err and "offline" not in err
    assert released.DRIVE_FOLDER_URL in err and ModelRegistry().entries() == []


def test_a_dripping_server_is_abandoned_once_the_stall_rule_is_broken(server, stand_in, capsys):
    """One byte every 0.1 s never trips a read timeout; the stall rule ends it after its window,
    and the bar was there from the start."""
    from sasnet_core.util.errors import DownloadError
    from sasnet_core.weights.download import download_released

    server.mode = "drip"
    seen = []
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"stalled: \d+ bytes arrived in the last 1\.5 s") as info:
        download_released("shha", progress=lambda done, total: seen.append((done, total)),
                          stall_window_s=1.5, stall_min_bytes=1000)
    took = time.monotonic() - started
    assert 1.5 <= took < 6, took
    assert seen[0] == (0, len(stand_in))  # before the first byte: the bar appears at once
    assert len(seen) > 5 and seen[-1][0] < 100  # then every byte moved it
    assert "running the same command again resumes it" in str(info.value)
    assert ModelRegistry().entries() == []


def test_a_response_without_length_stops_at_the_released_size(server, stand_in, capsys):
    server.mode = "endless"
    code, _, err = _cli(["models", "download", "shha"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"sent more than {len(stand_in):,} bytes" in err and "not the released SHHA.pth" in err
    # it read at most one piece past the released size (plus what sat in the socket buffers)
    assert server.sent_after_body < 16 << 20
    assert ModelRegistry().entries() == [] and _leftovers() == []  # the wrong part deleted too


def test_the_command_line_bar_is_drawn_before_any_byte(server, stand_in, capsys, monkeypatch):
    monkeypatch.setenv("SASNET_PROGRESS", "1")
    server.mode = 404
    code, _, err = _cli(["models", "download", "shha"], capsys)
    # the server refused at once, yet the bar was drawn while connecting
    assert code == 2 and "downloading SHHA.pth: [" in err and "0/" in err


@pytest.mark.parametrize("address, why", [
    ("http://[::1", "not a valid address"),
    ("http://example.com:99999/SHHA.pth", "not a valid address"),
    ("gopher://example.com/SHHA.pth", "only http and https"),
    ("http:///SHHA.pth", "names no host"),
])
def test_a_bad_address_is_one_line_naming_it_and_where_it_came_from(stand_in, monkeypatch, capsys, address, why):
    monkeypatch.setenv("SASNET_RELEASED_URL_SHHA", address)
    code, _, err = _cli(["models", "download", "shha"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert repr(address) in err and "SASNET_RELEASED_URL_SHHA" in err and why in err
    code, _, err = _cli(["models", "download", "shha", "--url", address], capsys)
    assert code == 2 and repr(address) in err and "(--url)" in err and why in err
    assert _leftovers() == []


def test_google_drive_stalling_inside_a_block_is_cancelled_through_gdown(stand_in, monkeypatch):
    """gdown reads 512 KiB blocks, so a drip never reaches the progress callback: the guard's
    watcher sets gdown's cancel event, and the message says it stalled."""
    from sasnet_core.util.errors import DownloadError
    from sasnet_core.weights.download import download_released

    monkeypatch.delenv("SASNET_RELEASED_URL_SHHA", raising=False)

    def download_folder(id=None, skip_download=False, quiet=False, timeout=None):
        return [types.SimpleNamespace(id="file-a", path="SHHA.pth")]

    def download(url=None, output=None, quiet=False, id=None, resume=False, progress=None, timeout=None,
                 retries=0, cancel=None):
        assert timeout == (10.0, 10.0) and retries == 2
        progress(1000, len(stand_in))
        if not cancel.wait(20):  # a block that never fills
            raise AssertionError("the stall was not noticed")
        raise RuntimeError("Download cancelled")  # as gdown's DownloadCancelled

    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download=download, download_folder=download_folder))
    started = time.monotonic()
    with pytest.raises(DownloadError, match="from drive.google.com stalled: 0 bytes arrived in the last 1 s"):
        download_released("shha", stall_window_s=1.0, stall_min_bytes=5000)
    # well before the 20 s block would have ended (margin for a machine busy with other work)
    assert time.monotonic() - started < 15
