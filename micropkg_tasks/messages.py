"""The one-line messages users read (Kedro's wording where Kedro had one)."""

from __future__ import annotations

from .package import PackageResult
from .project import Project
from .pull import PullResult

__all__ = ["package_message", "pull_message"]


def package_message(project: Project, result: PackageResult, all_mode: bool) -> str:
    """``'<pkg>.<path>' packaged! Location: <dir>`` (single) or ``Packaged '<path>' ...``."""
    entry = result.plan.entry
    if all_mode:
        return f"Packaged '{entry.module_path}' micro-package! ({result.sdist})"
    alias = f" as '{entry.alias}'" if entry.alias else ""
    return (
        f"'{project.package_name}.{entry.module_path}' packaged{alias}! "
        f"Location: {result.plan.location}"
    )


def pull_message(project: Project, result: PullResult, source: str, all_mode: bool) -> str:
    """Kedro's pull lines, preceded by the requirements added to ``requirements.in``."""
    plan = result.plan
    lines = []
    if plan.requirements_added and plan.requirements_file is not None:
        lines.append(
            f"Added the following requirements from micro-package '{plan.package}' to "
            f"{project.rel(plan.requirements_file)}:\n"
            + "\n".join(plan.requirements_added)
            + "\nRun 'micropkg build-reqs' to compile them into requirements.txt."
        )
    if all_mode:
        lines.append(f"Pulled and unpacked '{source}'!")
    else:
        alias = f" as '{plan.entry.alias}'" if plan.entry.alias else ""
        lines.append(f"Micro-package {source} pulled and unpacked{alias}!")
    return "\n".join(lines)
