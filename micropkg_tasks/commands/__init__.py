"""One module per command of the pulled micro-package lifecycle: each declares ``NAME``,
``HELP``, ``add_arguments(parser)`` and ``run(args) -> exit code``; the CLI registers them."""
