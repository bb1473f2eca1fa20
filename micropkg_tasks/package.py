"""The package operation: collect → rewrite imports → write a reproducible sdist → publish."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .collect import Collected, ConfigIndex, collect, read_version
from .errors import PackageError
from .fsutil import atomic_write
from .manifest import PackageEntry
from .names import config_file_name, sdist_basename
from .project import Project

__all__ = ["PackagePlan", "PackageResult", "build_package", "plan_package"]


@dataclass(frozen=True)
class PackagePlan:
    """Everything known about one package job before any work is done (cheap to compute)."""

    entry: PackageEntry
    name: str
    version: str
    collected: Collected
    location: str
    """The destination folder (absolute local path) or fsspec URL."""
    remote: bool
    filename: str

    @property
    def target(self) -> str:
        """The tarball to produce: a local path or a URL."""
        return f"{self.location.rstrip('/')}/{self.filename}"


@dataclass(frozen=True)
class PackageResult:
    """What a package job produced."""

    plan: PackagePlan
    sdist: str
    warnings: tuple[str, ...]


def _location(project: Project, destination: str | None) -> tuple[str, bool]:
    from .sources import is_remote

    if destination and is_remote(destination):
        return destination, True
    if not destination:
        return str(project.root / "dist"), False
    path = Path(destination).expanduser()
    return str(path if path.is_absolute() else project.root / path), False


def plan_package(
    project: Project, entry: PackageEntry, config_index: ConfigIndex | None = None
) -> PackagePlan:
    """Collect the inputs of ``entry`` and compute its target (no file is written)."""
    collected = collect(project, entry.module_path, entry.env, config_index)
    version = read_version(project, entry.module_path)
    location, remote = _location(project, entry.destination)
    if not remote and Path(location).is_file():
        raise PackageError(f"Destination '{location}' is a file, not a folder.")
    filename = sdist_basename(entry.name, version) + ".tar.gz"
    return PackagePlan(entry, entry.name, version, collected, location, remote, filename)


def _rewrite_group(
    files: tuple[tuple[Path, str], ...],
    prefix: str,
    old: str,
    new: str,
    project: Project,
    members: dict[str, bytes],
    warnings: list[str],
) -> None:
    from .rewrite import rewrite_source

    for path, rel in files:
        data = path.read_bytes()
        if rel.endswith(".py"):
            result = rewrite_source(
                data,
                old,
                new,
                filename=project.rel(path),
                project_package=project.package_name,
                package_depth=rel.count("/"),
            )
            data = result.text
            warnings.extend(result.warnings)
        members[f"{prefix}{rel}"] = data


def build_package(
    project: Project, plan: PackagePlan, *, manifest_entry: bool = False
) -> PackageResult:
    """Write the sdist of ``plan`` (atomically) and publish it when the target is remote.

    Older versions of the same tarball are removed; for a manifest entry, so is the tarball
    it produced last time under another alias or destination.
    """
    from .requirements import parse_package_requirements
    from .sdist import SdistSpec, write_sdist

    entry, name = plan.entry, plan.name
    micropkg_name = entry.module_path.rsplit(".", 1)[-1]
    old = f"{project.package_name}.{entry.module_path}"
    requirements = parse_package_requirements(
        plan.collected.code_dir / "requirements.txt", relative_to=project.root
    )

    members: dict[str, bytes] = {}
    warnings: list[str] = []
    _rewrite_group(plan.collected.code, f"{name}/", old, name, project, members, warnings)
    members.setdefault(f"{name}/__init__.py", b"")
    _rewrite_group(plan.collected.tests, "tests/", old, name, project, members, warnings)
    if any(rel.startswith("config/") for _, rel in plan.collected.code):
        warnings.append(
            f"{project.rel(plan.collected.code_dir / 'config')}: a pull installs "
            "'<package>/config/' into conf/<env>/ (Kedro's layout), not as code"
        )
    for path, rel in plan.collected.config:
        member = f"{name}/config/{config_file_name(rel, micropkg_name, entry.alias)}"
        if member in members:
            raise PackageError(
                f"'{project.rel(path)}' and the micro-package's own "
                f"'config/{member.split('/config/', 1)[1]}' would be the same file in the sdist; "
                "rename one of them."
            )
        members[member] = path.read_bytes()

    spec = SdistSpec(name=name, version=plan.version, requirements=requirements, files=members)
    if plan.remote:
        from .publish import publish

        with tempfile.TemporaryDirectory(prefix="micropkg-") as tmp:
            local = Path(tmp) / plan.filename
            write_sdist(local, spec)
            return PackageResult(plan, publish(local, plan.location), tuple(warnings))

    folder = Path(plan.location)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / plan.filename
    write_sdist(target, spec)
    _remove_stale(project, plan, target, manifest_entry)
    return PackageResult(plan, str(target), tuple(warnings))


_VERSIONED = re.compile(r"^(?P<name>[a-z0-9_]+)-(?P<version>[^-/]+)\.tar\.gz$")


def _remove_stale(project: Project, plan: PackagePlan, target: Path, manifest_entry: bool) -> None:
    """Remove older tarballs of this entry: other versions, or the previous alias's tarball."""
    stem = plan.filename.split("-", 1)[0]
    for other in target.parent.glob(f"{stem}-*.tar.gz"):
        match = _VERSIONED.match(other.name)
        if other != target and match and match["name"] == stem:
            other.unlink(missing_ok=True)
    if not manifest_entry:
        return
    record = project.state_dir / "package" / f"{plan.entry.module_path}.last"
    try:
        previous = Path(record.read_text(encoding="utf-8").strip())
    except OSError:
        previous = None
    if previous is not None and previous != target and previous.is_file():
        previous.unlink()
    record.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(record, f"{target}\n")
