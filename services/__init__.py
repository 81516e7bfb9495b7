"""Camera recorder and S3 uploader daemons."""

__version__ = "1.0.0"   # the one place: `--version` and pyproject.toml read it
