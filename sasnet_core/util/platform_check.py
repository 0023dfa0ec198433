"""System libraries the app needs beyond its Python packages, checked before Qt aborts without them.

PySide6's wheels bring Qt itself, but its X11 platform plugin (``xcb``, the default on Linux
desktops) links against system libraries that a minimal Debian/Ubuntu install lacks. Without one
of them Qt prints "could not load the Qt platform plugin xcb" and aborts the process (exit 134),
which no Python ``try`` can catch; so ``sasnet-gui`` asks here first and prints the packages to
install instead. Tests run on the ``offscreen`` platform and never need these libraries.

No Qt import here: the check loads the shared libraries with ctypes, as the plugin would.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from typing import Callable, Mapping

# (shared library the xcb plugin links against, Debian/Ubuntu package that provides it), from the
# dynamic dependencies of PySide6's libqxcb.so / libQt6XcbQpa.so (Qt >= 6.5 added xcb-cursor).
QT_XCB_LIBRARIES: tuple[tuple[str, str], ...] = (
    ("libxcb.so.1", "libxcb1"),
    ("libX11-xcb.so.1", "libx11-xcb1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-image.so.0", "libxcb-image0"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-randr.so.0", "libxcb-randr0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxcb-shape.so.0", "libxcb-shape0"),
    ("libxcb-xfixes.so.0", "libxcb-xfixes0"),
    ("libxcb-xkb.so.1", "libxcb-xkb1"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libfontconfig.so.1", "libfontconfig1"),
    ("libdbus-1.so.3", "libdbus-1-3"),
    ("libEGL.so.1", "libegl1"),
    ("libGL.so.1", "libgl1"),
)

# Platforms named in QT_QPA_PLATFORM that do not go through the xcb plugin.
_NO_X11_PLATFORMS = ("offscreen", "minimal", "minimalegl", "wayland", "eglfs", "linuxfb", "vnc", "vkkhrdisplay")


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_x11(*, platform: str | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether Qt will start its X11 (xcb) platform plugin here: Linux and other Unix desktops,
    unless QT_QPA_PLATFORM names another platform (offscreen in tests, wayland, ...)."""
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    if platform.startswith(("win", "darwin", "cygwin")):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "").split(":", 1)[0].strip().lower()
    if chosen and chosen != "xcb":
        # "wayland;xcb" tries xcb only after wayland fails; wayland sessions rarely lack xcb.
        return not chosen.split(";")[0].startswith(_NO_X11_PLATFORMS)
    return True


def missing_qt_libraries(*, platform: str | None = None, environ: Mapping[str, str] | None = None,
                         loads: Callable[[str], bool] | None = None) -> list[tuple[str, str]]:
    """The system libraries Qt's X11 plugin needs that cannot be loaded, as
    ``(library, debian_package)`` pairs; empty where everything is there or X11 is not used
    (Windows, macOS, QT_QPA_PLATFORM=offscreen/wayland/...). ``loads`` is for tests."""
    if not uses_x11(platform=platform, environ=environ):
        return []
    loads = loads or _loads
    return [(lib, package) for lib, package in QT_XCB_LIBRARIES if not loads(lib)]


def missing_qt_libraries_message(missing: list[tuple[str, str]]) -> str:
    """One sentence for a person: what is missing and the command that installs it."""
    libraries = ", ".join(lib for lib, _ in missing)
    packages = " ".join(dict.fromkeys(package for _, package in missing))
    return (f"the Qt X11 platform plugin needs system libraries that are not installed ({libraries}); "
            f"install them with 'sudo apt-get install {packages}' (Debian/Ubuntu package names), "
            "or run with QT_QPA_PLATFORM=wayland on a Wayland desktop")
