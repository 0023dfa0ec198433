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
server), through urllib3 with HTTP range requests. Offline or blocked, the error says so in one
sentence followed by the manual steps, after at most ``timeout`` seconds of silence; a transfer
that trickles or runs past the released size is stopped too (``download_guard``), and an address
that is not one is named in one line before anything is written.
"""
from __future__ import annotations

import errno
import glob
import http.client
import os
import shutil
import socket
import urllib.parse
from pathlib import Path
from typing import Callable

from sasnet_core.io.atomic import atomic_path, ensure_folder
from sasnet_core.util import paths
from sasnet_core.util.errors import DownloadError, ModelRegistryError
from sasnet_core.weights.download_guard import (
    STALL_MIN_BYTES,
    STALL_WINDOW_S,
    TIMEOUT_S,
    TransferGuard,
    checked_address,
)
from sasnet_core.weights.registry import ModelRegistry, valid_model_name
from sasnet_core.weights.released import (
    CHUNK,
    DRIVE_FOLDER_ID,
    RELEASED,
    ReleasedModel,
    manual_steps,
    sha256_file,
)

USER_AGENT = "sasnet-studio (https://github.com/TencentYoutuResearch/CrowdCounting-SASNet weights)"

Progress = Callable[[int, "int | None"], None]  # (bytes so far, bytes in all or None)


def staging_dir() -> Path:
    return paths.cache_dir() / "downloads"


def source_url(model: ReleasedModel, url: str | None = None) -> str | None:
    """Where ``model`` comes from: ``url``, else its environment variable, else None (Drive)."""
    if url is not None:  # given, even empty: checked, never silently replaced by Drive
        return url
    return os.environ.get(model.url_variable) or None


def download_released(key: str, *, to: str | os.PathLike | None = None, name: str | None = None,
                      make_default: bool = False, default_if_none: bool = True, registry=None,
                      url: str | None = None, progress: Progress | None = None,
                      hash_progress: Callable[[int, int], None] | None = None,
                      timeout: float = TIMEOUT_S, stall_window_s: float = STALL_WINDOW_S,
                      stall_min_bytes: int = STALL_MIN_BYTES):
    """Download the released model ``key`` ("shha" or "shhb"), verify it, put it in ``to`` (the
    models folder by default), register it as ``name`` (default ``key``) and return the registry
    entry. Raises DownloadError (or ModelRegistryError) with one sentence; on any failure nothing
    is registered and the models folder holds no partial file.

    ``progress(done, total)`` is called at once with the expected size, then while bytes arrive,
    and ``hash_progress(done, total)`` while the file's sha256 is checked; either may raise to
    cancel. ``timeout``: seconds to connect and of silence while reading; a transfer that brings
    under ``stall_min_bytes`` in ``stall_window_s`` seconds, or more bytes than the released file
    has, is stopped (``download_guard``).
    """
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

    address = source_url(model, url)
    if address is not None:  # before anything is written: a typo gets one line, not a traceback
        host = checked_address(address, "--url" if url is not None else model.url_variable).netloc
    staged = staging_dir() / model.file_name
    ensure_folder(staged.parent)
    guard = TransferGuard(model.file_name, host if address else "drive.google.com", model.size, progress,
                          window_s=stall_window_s, min_bytes=stall_min_bytes)
    if address is None or host.lower().endswith("drive.google.com"):
        _fetch_drive(model, address, staged, guard, timeout)
    else:
        _fetch_http(model, address, staged, guard, timeout)

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
def _fetch_http(model: ReleasedModel, url: str, staged: Path, guard: TransferGuard, timeout: float) -> None:
    """Fetch ``url`` into ``staged`` with urllib3, resuming from ``staged.part`` when the server
    allows it. urllib3 gives the connect and read timeouts, the retries of a refused connection
    or a busy server (502/503/504), redirects and the check that a body has its stated length;
    ``read1`` hands over each piece as it arrives, so the guard sees a drip and the bar moves."""
    urllib3 = _needs("urllib3", model)
    part = staged.with_name(staged.name + ".part")
    staged.unlink(missing_ok=True)
    start = part.stat().st_size if part.is_file() else 0
    if start >= model.size:
        part.unlink()
        start = 0
    # identity: the bytes on disk are the file's bytes, so a range request resumes them.
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    guard.begin(start)
    pool = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=timeout, read=timeout),
        retries=urllib3.Retry(connect=1, read=0, status=1, redirect=5, backoff_factor=0.5,
                              status_forcelist=(502, 503, 504), raise_on_status=False,
                              respect_retry_after_header=False))  # never wait an hour on a header
    try:
        response = pool.request("GET", url, headers=headers, preload_content=False)
    except urllib3.exceptions.HTTPError as exc:
        raise _network_error(model, url, exc) from None
    try:
        if response.status == 416 and start:  # the part no longer fits what the server has: start over
            part.unlink()
            return _fetch_http(model, url, staged, guard, timeout)
        if response.status not in (200, 206):
            raise DownloadError(f"the server answered {response.status} {response.reason or ''} for {url}; "
                                "nothing was downloaded. " + manual_steps(model.key))
        if start and response.status != 206:
            start = 0  # the server sends the whole file again: restart the part
            guard.begin(0)
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        done = start
        try:
            guard.announced(total)
            with open(part, "ab" if start else "wb") as fh:
                while chunk := response.read1(CHUNK):
                    guard.feed(done + len(chunk), total)
                    fh.write(chunk)
                    done += len(chunk)
        except DownloadError as exc:
            if guard.stall_error is None and "it is not the released" in str(exc):
                part.unlink(missing_ok=True)  # not the file: nothing in it is worth resuming
            raise
        except OSError as exc:
            if exc.filename is not None:
                raise  # the disk, not the network: one line naming the file
            raise _body_error(model, url, guard, done, timeout, exc) from None
        except (urllib3.exceptions.HTTPError, http.client.HTTPException) as exc:
            raise _body_error(model, url, guard, done, timeout, exc) from None
    finally:
        response.release_conn()
        pool.clear()
    if done < model.size:  # no stated length, and the server closed early
        raise _cut_short(model, url, done, model.size)
    os.replace(part, staged)


def _body_error(model: ReleasedModel, url: str, guard: TransferGuard, done: int, timeout: float,
                exc: BaseException) -> DownloadError:
    if "Timeout" in type(exc).__name__ or isinstance(exc, (socket.timeout, TimeoutError)):
        return guard.silent(timeout)
    return _cut_short(model, url, done, model.size)


def _network_error(model: ReleasedModel, url: str, exc: BaseException) -> DownloadError:
    """What went wrong before a response came, in one sentence: urllib3 wraps the cause."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    names = {cls.__name__ for cls in type(reason).__mro__}
    if "too many redirects" in text.lower() or "ResponseError" in names:
        return DownloadError(f"{_host(url)} sends the request on from address to address without end "
                             f"(too many redirects); nothing was downloaded. {manual_steps(model.key)}")
    if names & {"ProtocolError", "BadStatusLine", "RemoteDisconnected", "HTTPException"} and \
            "Timeout" not in text:
        first = text.splitlines()[0][:120] if text else type(reason).__name__
        return DownloadError(f"{_host(url)} did not answer as a web server does ({first}); nothing was "
                             f"downloaded. {manual_steps(model.key)}")
    if names & {"LocationValueError", "LocationParseError", "URLSchemeUnknown"}:
        return DownloadError(f"cannot download from {url!r}: it is not a valid address ({text})")
    return _unreachable(model, url, reason)


def _needs(package: str, model: ReleasedModel):
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise DownloadError(f"downloading needs the {package} package, which is not installed; install it "
                            "with 'pip install gdown' (it brings everything a download needs). "
                            + manual_steps(model.key)) from None


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
def _fetch_drive(model: ReleasedModel, url: str | None, staged: Path, guard: TransferGuard,
                 timeout: float) -> None:
    """Fetch from Google Drive with gdown: ``url`` if it is a Drive file link, else the file of
    that name in the authors' folder (the folder is listed first; it also holds the data sets).
    gdown's own options do the rest: (connect, read) timeouts, retries that resume, a resumable
    part file, and a cancel event that the guard sets when the transfer stalls."""
    try:
        import gdown
    except ImportError:
        raise DownloadError("downloading from Google Drive needs the gdown package, which is not installed; "
                            "install it with 'pip install gdown'. " + manual_steps(model.key)) from None
    import threading

    staged.unlink(missing_ok=True)
    cancel = threading.Event()
    options = _supported(gdown.download, quiet=True, resume=True, timeout=(timeout, timeout),
                         retries=2, cancel=cancel, progress=guard.feed)
    if "timeout" in options and "cancel" not in options:
        options["timeout"] = timeout  # gdown 6 before its cancel event took one number
    address = url or f"https://drive.google.com/drive/folders/{DRIVE_FOLDER_ID}"
    guard.begin(0)
    try:
        file_id = None if url else _drive_file_id(gdown, model, timeout)
        with guard.watching(cancel):
            if file_id:
                gdown.download(id=file_id, output=str(staged), **options)
            else:
                gdown.download(url=url, output=str(staged), **options)
    except DownloadError as exc:
        if "it is not the released" in str(exc):
            for part in staged.parent.glob(glob.escape(staged.name) + "*.part"):
                part.unlink(missing_ok=True)  # gdown's part of a wrong file: nothing to resume
        raise
    except Exception as exc:  # noqa: BLE001 - gdown reports Drive's refusals (quota, permission) as many types
        if guard.stall_error is not None:
            raise guard.stall_error from None
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
