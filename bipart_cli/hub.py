"""Resolving models, weights and indexes: a local folder, a Hub id, or an ``hf://`` URI.

The Hub cache follows ``HF_HOME`` / ``HF_HUB_CACHE`` and offline mode follows
``HF_HUB_OFFLINE``, both read when a call is made (huggingface_hub reads them once
at import, which would ignore a value set later in the process, e.g. by tests).
Every failure becomes a :class:`ModelUnavailableError` with one line saying how to
get the files.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from .errors import ModelUnavailableError, UsageError

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_TRUE = {"1", "true", "yes", "on"}
# a branch, tag, ``refs/pr/N`` or commit: git ref characters only, so a revision can
# never walk out of the Hub cache (``snapshots/<rev>``, ``refs/<rev>``)
_REVISION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._\-]*(/[A-Za-z0-9_][A-Za-z0-9._\-]*)*$")


def check_revision(revision: str | None, where: str = "revision") -> str | None:
    """``revision`` when it is a safe branch, tag, ``refs/pr/N`` or commit name, else
    :class:`UsageError` (``..``, absolute paths, control characters, > 255 characters)."""
    if revision is None:
        return None
    if (
        not isinstance(revision, str)
        or len(revision) > 255
        or not _REVISION.fullmatch(revision)
        or ".." in revision
        or revision.endswith((".lock", "."))
    ):
        raise UsageError(
            f"{where} {revision!r} is not a valid revision (a branch, tag or commit hash)"
        )
    return revision


def looks_like_path(text: str) -> bool:
    """Whether ``text`` means a local folder: ``./``, ``../``, ``/``, ``~``, or its parent
    folder exists (``runs/mine`` when ``runs/`` is here)."""
    if text.startswith((".", "/", "~", os.sep)):
        return True
    parent = Path(text).expanduser().parent
    return str(parent) not in ("", ".") and parent.is_dir()


def offline_from_env() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks for offline mode."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def hub_cache_dir() -> Path:
    """The Hub cache folder: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


_PROBED: dict[str, str | None] = {}


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_unreachable(timeout: float = 1.5) -> str | None:
    """Why the Hub cannot be reached, or None: one TCP connection attempt (to the proxy,
    when one is set) bounded by ``timeout`` seconds, remembered for the process."""
    endpoint = hub_endpoint()
    if endpoint in _PROBED:
        return _PROBED[endpoint]
    url = urlparse(endpoint)
    proxy = os.environ.get(f"{url.scheme}_proxy") or os.environ.get(f"{url.scheme.upper()}_PROXY")
    target = urlparse(proxy) if proxy else url
    host = target.hostname or ""
    port = target.port or (443 if target.scheme == "https" else 80)
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except OSError as exc:
            outcome.append(f"{endpoint} cannot be reached ({exc.strerror or type(exc).__name__})")

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.1)
    _PROBED[endpoint] = outcome[0] if outcome else f"{endpoint} did not answer within {timeout:g} s"
    return _PROBED[endpoint]


def in_hub_cache(repo: str, revision: str | None = None, repo_type: str = "model") -> bool:
    """Whether a snapshot of ``repo`` (``owner/name`` or ``hf://``) is in the local Hub cache."""
    try:
        _cached_snapshot(repo, revision, repo_type)
    except Exception:  # huggingface_hub raises several types for a miss
        return False
    return True


def _cached_snapshot(repo: str, revision: str | None, repo_type: str) -> Path:
    from huggingface_hub import snapshot_download

    if repo.startswith("hf://"):
        repo_type, repo, uri_revision = parse_hf_uri(repo)
        revision = uri_revision or revision
    return Path(
        snapshot_download(
            repo,
            repo_type=repo_type,
            revision=revision,
            cache_dir=hub_cache_dir(),
            local_files_only=True,
        )
    )


def looks_like_repo_id(text: str) -> bool:
    """``owner/name`` (not a path that starts with ``.``, ``/`` or ``~``)."""
    return bool(_REPO_ID.match(text)) and not text.startswith((".", "/", "~"))


def parse_hf_uri(uri: str) -> tuple[str, str, str | None]:
    """``hf://[models|datasets|spaces/]owner/name[@revision]`` -> (repo_type, repo_id, revision).

    ``hf://owner/name`` is a model. Raises :class:`UsageError` for anything else.
    """
    if not uri.startswith("hf://"):
        raise UsageError(f"not an hf:// URI: {uri!r}")
    rest = uri[len("hf://") :].strip("/")
    revision = None
    if "@" in rest:
        rest, revision = rest.rsplit("@", 1)
        if not revision:
            raise UsageError(f"empty revision in {uri!r}")
        check_revision(revision, f"the revision in {uri!r}:")
    parts = rest.split("/")
    repo_type = "model"
    if parts and parts[0] in REPO_TYPES:
        repo_type = REPO_TYPES[parts[0]]
        parts = parts[1:]
    if len(parts) != 2 or not looks_like_repo_id("/".join(parts)):
        raise UsageError(f"expected hf://[datasets/]owner/name[@revision], got {uri!r}")
    return repo_type, "/".join(parts), revision


def resolve_pretrained(
    repo_or_dir: str | Path,
    revision: str | None = None,
    repo_type: str = "model",
    offline: bool | None = None,
    allow_patterns: list[str] | None = None,
    hint: str | None = None,
) -> Path:
    """A folder holding the files of ``repo_or_dir``.

    repo_or_dir : a local folder (returned as is), a Hub id ``owner/name`` or an
        ``hf://`` URI (whose type and ``@revision`` override the arguments).
    revision : branch, tag or commit; None is the default branch.
    offline : None follows ``HF_HUB_OFFLINE``; True reads only the local cache.
    allow_patterns : restrict the download to matching files.
    hint : the local alternative named in the error message (default "pass a local folder").
    """
    text = str(repo_or_dir)
    local = Path(text).expanduser()
    if local.is_dir():
        return local
    check_revision(revision)
    if text.startswith("hf://"):
        repo_type, repo_id, uri_revision = parse_hf_uri(text)
        revision = uri_revision or revision
    elif looks_like_path(text):
        raise ModelUnavailableError(f"no such folder: {text}")
    elif looks_like_repo_id(text):
        repo_id = text
    else:
        raise ModelUnavailableError(
            f"no such folder: {text} (give a local folder or a Hub id owner/name)"
        )
    offline = offline_from_env() if offline is None else offline
    return _snapshot(repo_id, revision, repo_type, offline, allow_patterns, hint)


def _snapshot(
    repo_id: str,
    revision: str | None,
    repo_type: str,
    offline: bool,
    allow_patterns: list[str] | None,
    hint: str | None,
) -> Path:
    from huggingface_hub import snapshot_download

    cache = hub_cache_dir()
    at = f"{repo_id}" + (f"@{revision}" if revision else "")
    other = hint or "run once online (without --offline / HF_HUB_OFFLINE=1) or pass a local folder"
    # the cache first: a hit needs no network, and offline a miss fails at once
    try:
        return _cached_snapshot(repo_id, revision, repo_type)
    except Exception:  # a miss; the download below says why
        pass
    if offline:
        raise ModelUnavailableError(
            f"cannot get {at}: not in the Hub cache {cache} and offline mode is on; {other}"
        )
    problem = hub_unreachable()
    if problem:
        raise ModelUnavailableError(f"cannot get {at}: not in the Hub cache and {problem}; {other}")
    try:
        folder = snapshot_download(
            repo_id,
            repo_type=repo_type,
            revision=revision,
            cache_dir=cache,
            local_files_only=False,
            allow_patterns=allow_patterns,
        )
    except Exception as exc:  # huggingface_hub raises many types (HTTP, offline, not found)
        why = f"download failed ({type(exc).__name__})"
        how = f"check the id, the revision and the connection, or {hint or 'pass a local folder'}"
        raise ModelUnavailableError(f"cannot get {at}: {why}; {how}") from exc
    return Path(folder)
