"""Getting a released SASNet checkpoint in one step: download, verify, install, register.

The flow, the same whichever way the bytes arrive:

1. fetch the file into a staging folder in the user cache (never into the models folder), so an
   interrupted transfer leaves nothing half-written where models live; a re-run resumes it;
2. check its size and sha256 against ``released.RELEASED`` before anything else happens: a file
   that does not match is deleted and nothing is registered;
3. move it into the models folder atomically (rename, or an atomic copy across file systems);
4. register it with the registry, which records its verified identity, and make it the default
   model if there is none.

Bytes arrive from the authors' Google Drive folder through ``gdown`` (an optional dependency: it
knows Drive's confirmation pages and quotas), or, for a plain http(s) address given with
``url=`` or the model's environment variable (``SASNET_RELEASED_URL_SHHA``: a mirror, a test
server), through urllib with HTTP range requests. Offline or blocked, the error says so in one
sentence followed by the manual steps, after at most ``timeout`` seconds of silence.
"""
from __future__ import annotations

import errno
import http.client
import os
import shutil
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from sasnet_core import paths
from sasnet_core.atomic import atomic_path, ensure_folder
from sasnet_core.errors import DownloadError, ModelRegistryError
from sasnet_core.released import CHUNK, DRIVE_FOLDER_ID, RELEASED, ReleasedModel, manual_steps, sha256_file

# Seconds to wait for a connection or for the next bytes; a blocked network fails within this.
TIMEOUT_S = 10.0
USER_AGENT = "sasnet-studio (https://github.com/TencentYoutuResearch/CrowdCounting-SASNet weights)"

Progress = Callable[[int, "int | None"], None]  # (bytes so far, bytes in all or None)


def staging_dir() -> Path:
    return paths.cache_dir() / "downloads"


def source_url(model: ReleasedModel, url: str | None = None) -> str | None:
    """Where ``model`` comes from: ``url``, else its environment variable, else None (Drive)."""
    return url or os.environ.get(model.url_variable) or None


def download_released(key: str, *, to: str | os.PathLike | None = None, name: str | None = None,
                      make_default: bool = False, default_if_none: bool = True, registry=None,
                      url: str | None = None, progress: Progress | None = None,
                      hash_progress: Callable[[int, int], None] | None = None,
                      timeout: float = TIMEOUT_S):
    """Download the released model ``key`` ("shha" or "shhb"), verify it, put it in ``to`` (the
    models folder by default), register it as ``name`` (default ``key``) and return the registry
    entry. Raises DownloadError (or ModelRegistryError) with one sentence; on any failure nothing
    is registered and the models folder holds no partial file.

    ``progress(done, total)`` is called while bytes arrive and ``hash_progress(done, total)``
    while the file's sha256 is checked; either may raise to cancel.
    """
    from sasnet_core.registry import ModelRegistry, valid_model_name

    model = RELEASED.get(str(key).lower())
    if model is None:
        raise DownloadError(f"no released model named {key!r} (released: {', '.join(RELEASED)})")
    registry = registry or ModelRegistry()
    name = name or model.key
    if not valid_model_name(name):  # before 156 MB are fetched, not after
        raise ModelRegistryError(f"invalid model name {name!r}: use letters, digits, '.', '_' and '-'")
    folder = Path(to).expanduser() if to is not None else paths.models_dir()
    target = folder / model.file_name
    _check_name_free(registry, name, target)

    if target.is_file():
        # Already downloaded (an earlier run, or by hand): register it if it is the released file;
        # any other file of that name is a person's and is left alone.
        if _matches(target, model, hash_progress):
            return _register(registry, name, target, make_default, default_if_none, hash_progress)
        raise DownloadError(f"a different file named {model.file_name} is in the way (it is not the released "
                            "one); move it elsewhere or download with --to another folder", target)

    staged = staging_dir() / model.file_name
    ensure_folder(staged.parent)
    address = source_url(model, url)
    if address is None or "drive.google.com" in urllib.parse.urlsplit(address).netloc:
        _fetch_drive(model, address, staged, progress, timeout)
    else:
        _fetch_http(model, address, staged, progress, timeout)

    if not _matches(staged, model, hash_progress):
        size = staged.stat().st_size
        staged.unlink()
        raise DownloadError(f"the downloaded file is not the released {model.file_name} ({size:,} bytes, its "
                            "sha256 differs from the published one); it was deleted and nothing was "
                            f"registered. {manual_steps(model.key)}", address or model.file_name)
    _install(staged, target)
    return _register(registry, name, target, make_default, default_if_none, hash_progress)


def _check_name_free(registry, name: str, target: Path) -> None:
    entry = registry.get(name)
    if entry is not None and entry.path.expanduser().resolve() != target.resolve():
        raise ModelRegistryError(f"a model named {name!r} is registered already ({entry.path}); remove it "
                                 "first or download under another name with --name")


def _matches(path: Path, model: ReleasedModel, progress) -> bool:
    return path.stat().st_size == model.size and sha256_file(path, progress) == model.sha256


def _install(staged: Path, target: Path) -> None:
    """Move a verified file into place: a rename when both are on one file system, else an atomic
    copy; either way the target appears whole or not at all."""
    ensure_folder(target.parent)
    try:
        os.replace(staged, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        with atomic_path(target) as tmp:
            shutil.copyfile(staged, tmp)
        staged.unlink()


def _register(registry, name: str, target: Path, make_default: bool, default_if_none: bool, progress):
    return registry.add(name, target, make_default=make_default, default_if_none=default_if_none,
                        replace=registry.get(name) is not None, progress=progress)


# -- plain http(s) ------------------------------------------------------------------------
def _fetch_http(model: ReleasedModel, url: str, staged: Path, progress: Progress | None, timeout: float) -> None:
    """Fetch ``url`` into ``staged``, resuming from ``staged.part`` when the server allows it."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DownloadError(f"cannot download from {url!r}: only http and https addresses are supported")
    part = staged.with_name(staged.name + ".part")
    staged.unlink(missing_ok=True)
    start = part.stat().st_size if part.is_file() else 0
    if start >= model.size:
        part.unlink()
        start = 0
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # the part no longer fits what the server has: start over
            part.unlink()
            return _fetch_http(model, url, staged, progress, timeout)
        raise DownloadError(f"the server answered {exc.code} {exc.reason} for {url}; nothing was downloaded. "
                            + manual_steps(model.key)) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _unreachable(model, url, exc) from None
    with response:
        if start and response.status != 206:
            start = 0  # the server sends the whole file again: restart the part
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else model.size
        done = start
        try:
            with open(part, "ab" if start else "wb") as fh:
                while chunk := response.read(CHUNK):
                    fh.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, OSError) and exc.filename is not None:
                raise  # the disk, not the network: one line naming the file
            raise _cut_short(model, url, done, total) from None
    # urllib returns end-of-data, not an error, when a server closes before Content-Length.
    if done < total:
        raise _cut_short(model, url, done, total)
    os.replace(part, staged)


def _cut_short(model: ReleasedModel, url: str, done: int, total: int) -> DownloadError:
    return DownloadError(f"the transfer of {model.file_name} from {_host(url)} was cut short after "
                         f"{done / 1e6:.1f} of {total / 1e6:.1f} MB; nothing was registered, and running the "
                         "same command again resumes it")


def _unreachable(model: ReleasedModel, url: str, exc: BaseException) -> DownloadError:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    timed_out = isinstance(reason, (socket.timeout, TimeoutError)) or "Timeout" in type(reason).__name__
    if timed_out or "timed out" in text.lower():
        why = "no answer within the time limit"
    elif isinstance(reason, socket.gaierror) or "NameResolution" in text or "Name or service not known" in text:
        why = "its name cannot be looked up"
    elif isinstance(reason, ConnectionRefusedError) or "Connection refused" in text:
        why = "connection refused"
    else:
        # requests and urllib3 wrap the cause in long nested messages: keep the innermost line
        why = getattr(reason, "strerror", None) or (text.splitlines()[0][:120] if text else type(reason).__name__)
    return DownloadError(f"cannot reach {_host(url)} ({why}): this machine seems to be offline or the site is "
                         f"blocked. {manual_steps(model.key)}")


def _no_connection(exc: BaseException) -> bool:
    """Whether an error of gdown (requests underneath) means the network or the site could not be
    reached, as opposed to Drive refusing the file; told by class names so requests need not load."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ConnectionError", "Timeout", "TimeoutError", "gaierror", "ProxyError", "SSLError"})


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


# -- Google Drive -------------------------------------------------------------------------
def _fetch_drive(model: ReleasedModel, url: str | None, staged: Path, progress: Progress | None,
                 timeout: float) -> None:
    """Fetch from Google Drive with gdown: ``url`` if it is a Drive file link, else the file of
    that name in the authors' folder (the folder is listed first; it also holds the data sets)."""
    try:
        import gdown
    except ImportError:
        raise DownloadError("downloading from Google Drive needs the gdown package, which is not installed; "
                            "install it with 'pip install gdown'. " + manual_steps(model.key)) from None
    staged.unlink(missing_ok=True)
    options = _supported(gdown.download, quiet=True, resume=True, timeout=timeout, progress=progress)
    address = url or f"https://drive.google.com/drive/folders/{DRIVE_FOLDER_ID}"
    try:
        file_id = None if url else _drive_file_id(gdown, model, timeout)
        if file_id:
            gdown.download(id=file_id, output=str(staged), **options)
        else:
            gdown.download(url=url, output=str(staged), **options)
    except Exception as exc:  # noqa: BLE001 - gdown reports Drive's refusals (quota, permission) as many types
        if isinstance(exc, OSError) and getattr(exc, "filename", None):
            raise
        if _no_connection(exc):
            raise _unreachable(model, address, exc) from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DownloadError(f"Google Drive did not hand out {model.file_name} ({first}); nothing was "
                            f"registered. {manual_steps(model.key)}") from None
    if not staged.is_file():
        raise DownloadError(f"Google Drive did not hand out {model.file_name}; nothing was registered. "
                            + manual_steps(model.key))


def _drive_file_id(gdown, model: ReleasedModel, timeout: float) -> str:
    listing = gdown.download_folder(id=DRIVE_FOLDER_ID, skip_download=True,
                                    **_supported(gdown.download_folder, quiet=True, timeout=timeout))
    for item in listing or []:
        if Path(getattr(item, "path", "")).name == model.file_name:
            return item.id
    raise DownloadError(f"the authors' Google Drive folder no longer lists {model.file_name}. "
                        + manual_steps(model.key))


def _supported(function, **options) -> dict:
    """The options ``function`` accepts: gdown 5 lacks ``progress`` and ``timeout``, gdown 6 has them."""
    import inspect

    accepted = inspect.signature(function).parameters
    return {k: v for k, v in options.items() if k in accepted}


def gdown_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("gdown") is not None
