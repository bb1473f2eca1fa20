"""Project settings. There is no need to edit this file unless you want to change values
from the Kedro defaults. For further information, including these default values, see
https://docs.kedro.org/en/0.19.15/kedro_project_setup/settings.html."""

# Instantiated project hooks.
# from demo_project.hooks import ProjectHooks
# HOOKS = (ProjectHooks(),)

# Directory that holds configuration.
# CONF_SOURCE = "conf"

# Keyword arguments to pass to the `CONFIG_LOADER_CLASS` constructor.
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
