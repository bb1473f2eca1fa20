"""micropkg-tasks: Kedro micro-packaging as incremental doit tasks."""

__version__ = "0.1.0"
