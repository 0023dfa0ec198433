"""``sasnet-gui`` on a machine without the X11 libraries Qt's xcb plugin needs: it names the
package to install and exits with status 1, instead of Qt aborting the process (exit 134)."""
from __future__ import annotations

import pytest

from sasnet_gui import app

MISSING = "libxcb-cursor.so.0"


@pytest.fixture
def no_xcb_cursor(monkeypatch):
    """This machine as a fresh Debian install: every library loads except libxcb-cursor."""
    def cdll(name, *args, **kwargs):
        if name == MISSING:
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        return object()

    monkeypatch.setattr("sasnet_core.util.platform_check.ctypes.CDLL", cdll)


def _no_qt_application(monkeypatch):
    """Fail the test if main goes on to build the window."""
    def refuse(*_a, **_k):
        raise AssertionError("the app went on to start Qt")

    monkeypatch.setattr(app, "create_window", refuse)


@pytest.mark.skipif(not app.sys.platform.startswith("linux"), reason="the xcb plugin is Linux's")
def test_missing_x11_library_names_the_package_and_exits_1(no_xcb_cursor, monkeypatch, capsys):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    _no_qt_application(monkeypatch)

    status = app.main(["--no-model"])

    err = capsys.readouterr().err.strip()
    assert status == 1
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    assert err.startswith("sasnet-gui: error: ")
    assert MISSING in err and "sudo apt-get install libxcb-cursor0" in err
    assert "libxcb-icccm4" not in err  # only what is missing


@pytest.mark.skipif(not app.sys.platform.startswith("linux"), reason="the xcb plugin is Linux's")
def test_default_platform_on_linux_is_checked_too(no_xcb_cursor, monkeypatch, capsys):
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)  # a desktop session: Qt picks xcb
    _no_qt_application(monkeypatch)

    assert app.main([]) == 1
    assert "libxcb-cursor0" in capsys.readouterr().err


def test_offscreen_skips_the_check(no_xcb_cursor, monkeypatch, qapp, capsys):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    started = []
    monkeypatch.setattr(app, "create_window", lambda *a, **k: started.append(a) or _Quitter())
    monkeypatch.setattr(app, "_install_handlers", lambda *_a: None)
    monkeypatch.setattr(app, "apply_dark_palette", lambda _app: None)  # other tests share qapp
    monkeypatch.setattr(type(qapp), "exec", lambda self: 0)

    assert app.main(["--no-model"]) == 0
    assert started, "offscreen must start the window even without the X11 libraries"
    assert "apt-get" not in capsys.readouterr().err


class _Quitter:
    controller = None


def test_a_studio_home_that_is_a_file_is_named_by_the_app_and_the_command(tmp_path, monkeypatch, capsys):
    from sasnet_core.cli import main as cli

    home = tmp_path / "home.txt"
    home.write_text("not a folder")
    monkeypatch.setenv("SASNET_STUDIO_HOME", str(home))
    _no_qt_application(monkeypatch)
    assert app.main(["--no-model"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"sasnet-gui: error: {home}: SASNET_STUDIO_HOME cannot be a folder: {home} is a file; "
                   "it should name a folder to keep models, settings and logs in")
    assert cli(["models", "list"]) == 2  # not an empty list: there is no folder to list
    assert "SASNET_STUDIO_HOME cannot be a folder" in capsys.readouterr().err
    monkeypatch.setenv("SASNET_STUDIO_HOME", str(home / "below"))  # a file on its way
    assert cli(["models", "list"]) == 2 and f"{home} is a file" in capsys.readouterr().err
