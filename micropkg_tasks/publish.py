"""Publishing a built tarball to a remote folder (any fsspec URL): output, not a source."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import SourceError
from .fsutil import atomic_writer
from .sources import _filesystem, _translate

__all__ = ["publish"]


def publish(local: Path, dest_url: str, fs_args: Mapping[str, Any] | None = None) -> str:
    """Upload ``local`` to ``<dest_url>/<local.name>`` and return that URL.

    A local (``file://``) destination gets the file atomically (temporary name, then rename).
    """
    local = Path(local)
    if not local.is_file():
        raise SourceError(f"Cannot publish {local}: no such file")
    fs, root = _filesystem(dest_url, fs_args)
    url = dest_url.rstrip("/") + "/" + local.name
    target = str(root).rstrip("/") + "/" + local.name
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    try:
        if "file" in protocols or "local" in protocols:
            folder = Path(root)
            folder.mkdir(parents=True, exist_ok=True)
            with local.open("rb") as src, atomic_writer(folder / local.name) as out:
                shutil.copyfileobj(src, out)
        else:
            fs.put_file(str(local), target)
            fs.invalidate_cache(target)
    except Exception as exc:
        raise _translate(exc, url, action="publish to") from exc
    return url
