"""Cache folder, hashing and the writable-folder check for exported graphs and engines.

Layout under the cache root (``default_cache_dir()``)::

    onnx/<model>-<H>x<W>-op<opset>-<key>/     text_encoder.onnx, vision_decoder.onnx,
                                             metadata.json        (export_onnx)
    engines/<gpu>-sm<cc>-trt<ver>-<precision>-<H>x<W>-<key>/
                                             <graph>.engine + <graph>.json (tensorrt_engine)

``<key>`` is the first 16 hex digits of the SHA-256 of the canonical JSON of every field that
changes the artefact, so a changed field always gives another folder (never a stale hit). Cache
folders are build artefacts: never committed, safe to delete.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from poa_gres_ros.core.json_files import read_json

CACHE_ENV = 'POA_GRES_CACHE_DIR'
_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """Cache root: ``$POA_GRES_CACHE_DIR``, else ``$XDG_CACHE_HOME/poa_gres_ros``, else
    ``~/.cache/poa_gres_ros``. Not created here (see ``ensure_writable_dir``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(base) / 'poa_gres_ros'


def ensure_writable_dir(path: str | os.PathLike, purpose: str = 'cache') -> Path:
    """Create ``path`` (with parents) and check that a file can be written there.

    Args:
        path: folder. purpose: words for the error message, e.g. 'TensorRT engine cache'.
    Returns:
        The folder as a Path.
    Raises:
        RuntimeError: the folder cannot be created or written, naming the folder, the OS error
            and what to change (``cache_dir`` option / ``POA_GRES_CACHE_DIR``).
    """
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix='.write-test-', dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise RuntimeError(
            f'the {purpose} folder {folder} is not writable ({type(exc).__name__}: {exc}); '
            f'pass a writable cache_dir or set {CACHE_ENV} to a writable folder'
        ) from exc
    return folder


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes (read in 1 MiB chunks).

    Raises:
        FileNotFoundError: no such file.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def canonical_json(data) -> str:
    """JSON with sorted keys and no whitespace: the text that keys and config hashes hash."""
    return json.dumps(data, sort_keys=True, separators=(',', ':'), default=str)


def key_hash(fields: dict, length: int = 16) -> str:
    """First ``length`` hex digits of the SHA-256 of ``canonical_json(fields)``."""
    return hashlib.sha256(canonical_json(fields).encode()).hexdigest()[:length]


def slug(text: str, max_len: int = 40) -> str:
    """Folder-name-safe lower-case form of a free text (GPU names, model names)."""
    out = re.sub(r'[^a-z0-9.]+', '-', str(text).lower()).strip('-')
    return out[:max_len] or 'x'


def read_metadata(path: str | os.PathLike) -> tuple[dict | None, str | None]:
    """``(metadata, None)`` from a JSON object file, or ``(None, why it cannot be used)`` when
    the file is missing, not valid JSON or not an object."""
    if not Path(path).is_file():
        return None, f'{path} is missing'
    try:
        return read_json(path), None
    except ValueError as exc:
        return None, str(exc)


def write_json_atomic(path: str | os.PathLike, data: dict) -> None:
    """Write ``data`` as indented JSON through a temporary file and ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + '\n', 'utf-8')
    os.replace(tmp, path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes through a temporary file and ``os.replace`` (no half-written artefact)."""
    path = Path(path)
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    with open(tmp, 'wb') as fh:
        fh.write(data)
    os.replace(tmp, path)


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike):
    """Hold an exclusive ``flock`` on the file ``path`` (created if needed) for the block, so
    two processes (e.g. two nodes starting together) never build the same artefact at once."""
    path = Path(path)
    with open(path, 'a+b') as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
