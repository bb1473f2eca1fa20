"""The package/pull manifests in ``pyproject.toml``: typed entries, validated up front."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ManifestError
from .names import (
    normalize_destination,
    normalize_module_path,
    shown,
    unsafe_character,
    validate_alias,
)
from .options import manifest_field, manifest_keys
from .project import kedro_major

__all__ = [
    "Manifest",
    "PackageEntry",
    "PullEntry",
    "kedro1x_manifest_warning",
    "load_manifest",
    "manifest_table",
]

KEDRO_TABLE = "tool.kedro.micropkg"
OWN_TABLE = "tool.micropkg"
#: Keys of [tool.micropkg] that are settings, not manifests (read by micropkg_tasks.limits).
SETTINGS_KEYS = frozenset({"max-size"})


@dataclass(frozen=True)
class PackageEntry:
    """One micro-package to package: ``module_path`` plus its options."""

    module_path: str
    alias: str | None = None
    destination: str | None = None
    env: str = "base"

    @property
    def name(self) -> str:
        """The distribution/package name: the alias or the last module path component."""
        return self.alias or self.module_path.rsplit(".", 1)[-1]

    def options(self) -> dict[str, Any]:
        """The entry as a plain dict (used for doit's ``config_changed``)."""
        return dict(vars(self))  # its fields are strings or None: no deep copy needed


@dataclass(frozen=True)
class PullEntry:
    """One micro-package to pull: ``source`` (path, URL or requirement) plus its options."""

    source: str
    alias: str | None = None
    destination: str | None = None
    env: str = "base"
    fs_args: str | None = None
    sha256: str | None = None

    def options(self) -> dict[str, Any]:
        """The entry as a plain dict (used for doit's ``config_changed``)."""
        return dict(vars(self))  # its fields are strings or None: no deep copy needed


@dataclass(frozen=True)
class Manifest:
    """Both manifests of a project."""

    package: tuple[PackageEntry, ...] = ()
    pull: tuple[PullEntry, ...] = ()


def manifest_table(pyproject: Mapping[str, Any]) -> str:
    """The table the manifest lives in (``[tool.kedro.micropkg]`` when there is none)."""
    tool = pyproject.get("tool", {})
    kedro = tool.get("kedro", {}) if isinstance(tool, dict) else {}
    has_kedro = isinstance(kedro, dict) and "micropkg" in kedro
    own = tool.get("micropkg") if isinstance(tool, dict) else None
    # [tool.micropkg] holding only settings (max-size) is not a manifest table.
    has_own = own is not None and not (isinstance(own, dict) and set(own) <= SETTINGS_KEYS)
    if has_kedro and has_own:
        raise ManifestError(
            "Both [tool.kedro.micropkg] and [tool.micropkg] are present in pyproject.toml; "
            "keep only one (Kedro 1.x projects must use [tool.micropkg])."
        )
    if has_kedro:
        return KEDRO_TABLE
    if has_own:
        return OWN_TABLE
    return KEDRO_TABLE


def kedro1x_manifest_warning(
    pyproject: Mapping[str, Any], installed_kedro: Callable[[], str | None]
) -> str | None:
    """The warning for a ``[tool.kedro.micropkg]`` manifest in a Kedro 1.x project, or None.

    Kedro 1.x refuses to start with it. The project is a Kedro 1.x one when its
    ``kedro_init_version`` is 1.x or later, or else when ``installed_kedro()`` (called only
    then) is.
    """
    tool = pyproject.get("tool")
    kedro = tool.get("kedro") if isinstance(tool, Mapping) else None
    if not isinstance(kedro, Mapping) or "micropkg" not in kedro:
        return None
    init = kedro.get("kedro_init_version")
    if (kedro_major(init) or 0) >= 1:
        reason = f'kedro_init_version = "{shown(str(init))}"'
    else:
        installed = installed_kedro()
        if (kedro_major(installed) or 0) < 1:
            return None
        reason = f"Kedro {shown(str(installed))} is installed"
    return (
        '[tool.kedro.micropkg] in pyproject.toml stops Kedro 1.x from starting ("Found '
        f"unexpected keys in 'pyproject.toml'\") and this is a Kedro 1.x project ({reason}): "
        "move the manifest to [tool.micropkg] with 'micropkg init --migrate'."
    )


def _dotted_key_hint(key: str, value: Mapping[str, Any], allowed: tuple[str, ...]) -> str | None:
    """If ``key = {...}`` is really an unquoted dotted key, return the dotted path."""
    path = [key]
    current: Mapping[str, Any] = value
    while True:
        unknown = [k for k in current if k not in allowed]
        if len(unknown) != 1 or not isinstance(current[unknown[0]], Mapping):
            break
        path.append(unknown[0])
        current = current[unknown[0]]
    return ".".join(path) if len(path) > 1 else None


def _entries(section: Any, where: str, command: str) -> list[tuple[str, dict[str, Any]]]:
    """The entries of a manifest table as (key, {option name: value}), checked against the
    keys the option table allows for ``command``."""
    allowed = manifest_keys(command)
    if section is None:
        return []
    if not isinstance(section, Mapping):
        raise ManifestError(f"[{where}] must be a table of entries, got {type(section).__name__}.")
    result = []
    for key, spec in section.items():
        if not isinstance(spec, Mapping):
            raise ManifestError(
                f'Entry "{key}" in [{where}] must be a table, e.g. "{key}" = {{}}, got {spec!r}.'
            )
        dotted = _dotted_key_hint(key, spec, allowed)
        if dotted is not None:
            raise ManifestError(
                f"Entry '{key}' in [{where}] is an unquoted dotted key: write it quoted, "
                f'as "{dotted}" = {{ ... }}.'
            )
        for option in spec:
            if option not in allowed:
                raise ManifestError(
                    f"Unknown key '{option}' in entry \"{key}\" of [{where}]; allowed keys: "
                    f"{', '.join(manifest_keys(command, primary=True))}."
                )
        fields: dict[str, Any] = {}
        given: dict[str, str] = {}
        for option, value in spec.items():
            if not isinstance(value, str) or not value:
                raise ManifestError(
                    f"Key '{option}' in entry \"{key}\" of [{where}] must be a non-empty "
                    f"string, got {value!r}."
                )
            name = manifest_field(option)
            if name in given:
                first, second = sorted((given[name], option), key=allowed.index)
                raise ManifestError(
                    f"Entry \"{key}\" in [{where}] sets both '{first}' and '{second}'; keep one."
                )
            given[name] = option
            fields[name] = value
        result.append((key, fields))
    return result


def _env(value: str | None, where: str) -> str:
    env = value or "base"
    if "/" in env or "\\" in env or env in (".", "..") or unsafe_character(env) is not None:
        raise ManifestError(f"Invalid env '{shown(env)}' in {where}: it must be a folder name.")
    return env


def package_entry(
    module_path: str,
    *,
    alias: str | None = None,
    destination: str | None = None,
    env: str | None = None,
    source_prefix: str = "",
    where: str = "the command line",
) -> PackageEntry:
    """Build a validated ``PackageEntry`` (module path normalised, alias checked)."""
    path = normalize_module_path(module_path, source_prefix=source_prefix)
    if alias:
        validate_alias(alias)
    return PackageEntry(path, alias or None, destination or None, _env(env, where))


def pull_entry(
    source: str,
    *,
    alias: str | None = None,
    destination: str | None = None,
    env: str | None = None,
    fs_args: str | None = None,
    sha256: str | None = None,
    where: str = "the command line",
) -> PullEntry:
    """Build a validated ``PullEntry`` (alias and destination checked)."""
    if alias:
        validate_alias(alias)
    normalize_destination(destination)
    if sha256 is not None and (
        len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower())
    ):
        raise ManifestError(f"Invalid sha256 '{sha256}' in {where}: expected 64 hex digits.")
    return PullEntry(source, alias or None, destination or None, _env(env, where), fs_args, sha256)


def load_manifest(pyproject: Mapping[str, Any], *, source_prefix: str = "") -> Manifest:
    """Read and validate both manifests; any problem raises ``ManifestError``."""
    table = manifest_table(pyproject)
    tool = pyproject.get("tool", {})
    root: Any = (
        tool.get("kedro", {}).get("micropkg") if table == KEDRO_TABLE else tool.get("micropkg")
    )
    if root is None:
        return Manifest()
    if not isinstance(root, Mapping):
        raise ManifestError(f"[{table}] must be a table with 'package' and/or 'pull' tables.")
    settings = SETTINGS_KEYS if table == OWN_TABLE else frozenset()
    for key in root:
        if key not in ("package", "pull") and key not in settings:
            allowed = ", ".join(["package", "pull", *sorted(settings)])
            raise ManifestError(f"Unknown key '{key}' in [{table}]; allowed keys: {allowed}.")

    packages = []
    where = f"{table}.package"
    for key, spec in _entries(root.get("package"), where, "package"):
        try:
            packages.append(
                package_entry(key, **spec, source_prefix=source_prefix, where=f"[{where}]")
            )
        except ManifestError as exc:
            raise ManifestError(f'Entry "{key}" in [{where}]: {exc}') from None
    seen: set[str] = set()
    for entry in packages:
        if entry.module_path in seen:
            raise ManifestError(
                f"Two entries in [{where}] name the same micro-package '{entry.module_path}'."
            )
        seen.add(entry.module_path)

    pulls = []
    where = f"{table}.pull"
    for key, spec in _entries(root.get("pull"), where, "pull"):
        try:
            pulls.append(pull_entry(key, **spec, where=f"[{where}]"))
        except ManifestError as exc:
            raise ManifestError(f'Entry "{key}" in [{where}]: {exc}') from None
    return Manifest(tuple(packages), tuple(pulls))
