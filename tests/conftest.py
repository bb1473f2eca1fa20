"""The test suite's plugins: shared fixtures, the side venvs and the loopback servers."""

pytest_plugins = [
    "shared_fixtures",  # project, cli, project_factory, no_processes, the isolated pip env
    "kedro_venvs",  # side venvs with Kedro 0.19.15 / 1.x, the oldest packaging
    "servers",  # test servers: S3 (moto), HTTP, a PEP 503 package index
]
