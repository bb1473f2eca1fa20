from micropkg_tasks.tasks import *  # noqa: F403
