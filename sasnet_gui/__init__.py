"""SASNet Studio desktop application (PySide6 + pyqtgraph). Entry point: ``sasnet_gui.app:main``."""
from sasnet_gui.compat import guard_pyside_bool_refcount as _guard

# PySide6 6.12.0 on Python 3.11 leaks a reference to True on every signal emit and aborts the
# process after a few hundred; pyproject excludes that release, this guards other installs.
_guard()
