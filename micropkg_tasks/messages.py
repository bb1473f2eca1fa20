"""The one-line messages users read (Kedro's wording where Kedro had one)."""

from __future__ import annotations

from .package import PackageResult
from .project import Project
from .pull import PullPlan, PullResult
from .requirements import BuildResult
from .sources import public_url

__all__ = [
    "build_reqs_message",
    "describe_plan",
    "markers_message",
    "package_message",
    "pull_message",
]


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
    source = public_url(source)
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


def describe_plan(project: Project, plan: PullPlan) -> str:
    """What a pull would do, one line per file with its action (``micropkg pull --dry-run``):
    create, update, merge, keep (a local edit kept), remove, conflict."""
    source = public_url(plan.entry.source)
    lines = [f"Pull of {source} into {plan.module} (version {plan.version or '?'}):"]
    lines += [f"  {action}  {what}" for action, what in plan.actions]
    lines += [f"  conflict  {conflict}" for conflict in plan.conflicts]
    lines += [f"  requirement  {line}" for line in plan.requirements_added]
    counts = {a: sum(1 for action, _ in plan.actions if action == a) for a in ("merge", "keep")}
    lines.append(
        f"{len(plan.writes)} to write ({counts['merge']} merged), {len(plan.removals)} to "
        f"remove, {counts['keep']} local edit(s) kept, {plan.unchanged} unchanged, "
        f"{len(plan.conflicts) + len(plan.marked)} conflict(s). Nothing was written (--dry-run)."
    )
    return "\n".join(lines)


def markers_message(plan: PullPlan) -> str:
    """The files a pull wrote with conflict markers (``--merge=markers``)."""
    listing = "\n".join(f"  {rel}" for rel in plan.marked)
    return (
        f"{len(plan.marked)} file(s) of '{plan.module}' have conflict markers to resolve (edit "
        f"them, then 'micropkg status' shows them clean):\n{listing}"
    )


def build_reqs_message(project: Project, result: BuildResult) -> str:
    """``Compiled requirements.in into requirements.txt.``, ``... is up to date.`` or
    ``Nothing to compile: ...``."""
    req_in, req_txt = project.rel(result.requirements_in), project.rel(result.requirements_txt)
    if result.nothing == "no requirements.in":
        return f"Nothing to compile: no {req_in}."
    if result.nothing == "no requirements":
        return f"Nothing to compile: {req_in} has no requirements."
    if result.compiled:
        return f"Compiled {req_in} into {req_txt}."
    return f"{req_txt} is up to date."
