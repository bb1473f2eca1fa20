"""Run micropkg-tasks as it would start on Windows: POSIX-only modules cannot be imported.

Usage: ``python posix_free.py import-all`` (import every module of micropkg_tasks),
``python posix_free.py micropkg ARGS...`` or ``python posix_free.py doit ARGS...``.
"""

from __future__ import annotations

import importlib
import pkgutil
import runpy
import sys

#: Standard modules that exist only on POSIX systems.
POSIX_ONLY = ("fcntl", "grp", "pty", "pwd", "resource", "termios", "tty")

for _name in POSIX_ONLY:
    assert _name not in sys.modules, f"{_name} was imported before the blocker ran"
    sys.modules[_name] = None  # type: ignore[assignment]  # makes `import fcntl` raise


def main() -> int:
    """Dispatch on the first argument (see the module docs)."""
    tool, args = sys.argv[1], sys.argv[2:]
    if tool == "import-all":
        import micropkg_tasks

        names = [m.name for m in pkgutil.walk_packages(micropkg_tasks.__path__, "micropkg_tasks.")]
        for name in names:
            if name != "micropkg_tasks.__main__":
                importlib.import_module(name)
        print("\n".join(names))
        return 0
    if tool == "micropkg":
        from micropkg_tasks.cli import main as micropkg_main

        return micropkg_main(args)
    if tool == "doit":
        sys.argv = ["doit", *args]
        runpy.run_module("doit", run_name="__main__", alter_sys=True)
        return 0
    raise SystemExit(f"unknown tool {tool!r}")


if __name__ == "__main__":
    sys.exit(main())
