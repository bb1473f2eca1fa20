"""Tiny, valid pure-Python wheels written by hand, for offline resolver tests."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_wheel"]


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def build_wheel(
    wheelhouse: Path, name: str, version: str = "1.0", requires: Sequence[str] = ()
) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` into ``wheelhouse`` and return its path.

    The wheel holds ``<name>/__init__.py`` and a ``.dist-info`` with ``METADATA`` (one
    ``Requires-Dist`` per item of ``requires``), ``WHEEL`` and ``RECORD``. ``name`` must already
    be a normalised distribution name (lower case, underscores).
    """
    wheelhouse.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    metadata = "".join(
        [
            "Metadata-Version: 2.1\n",
            f"Name: {name}\n",
            f"Version: {version}\n",
            "Summary: test wheel\n",
            *(f"Requires-Dist: {req}\n" for req in requires),
        ]
    )
    wheel_meta = (
        "Wheel-Version: 1.0\nGenerator: micropkg-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files: dict[str, bytes] = {
        f"{name}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": wheel_meta.encode(),
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    record += f"{dist_info}/RECORD,,\n"
    files[f"{dist_info}/RECORD"] = record.encode()

    path = wheelhouse / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member, data in files.items():
            zf.writestr(member, data)
    return path
