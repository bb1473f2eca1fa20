"""Jinja2 templates of the generated sdist files (shipped as micropkg_tasks.templates)."""
