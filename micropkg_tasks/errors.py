"""One exception family: every error a user can act on is a ``MicropkgError``."""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "ManifestError",
    "MicropkgError",
    "PackageError",
    "ProjectError",
    "PullError",
    "RequirementsError",
    "SourceError",
]


class MicropkgError(Exception):
    """An error with a one-line message meant for the user (the CLI prints ``Error: <msg>``)."""


class ProjectError(MicropkgError):
    """The Kedro project cannot be found or read."""


class ManifestError(MicropkgError):
    """A ``[tool.(kedro.)micropkg]`` manifest or a command-line option is invalid."""


class PackageError(MicropkgError):
    """A micro-package cannot be packaged (missing, empty, bad requirements...)."""


class RequirementsError(MicropkgError):
    """A requirements file cannot be parsed, merged or compiled."""


class SourceError(MicropkgError):
    """A pull source cannot be fetched (unknown protocol, missing object, credentials)."""


class PullError(MicropkgError):
    """An sdist cannot be pulled (invalid or hostile archive, bad layout)."""


class ConflictError(PullError):
    """A pull would overwrite files edited locally; ``paths`` lists them."""

    def __init__(self, message: str, paths: list[str]) -> None:
        super().__init__(message)
        self.paths = paths
