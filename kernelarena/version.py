"""The package's version, from its installed metadata: pyproject.toml's ``version`` is the one place it is written."""

from importlib import metadata

# A source tree used without installing it (PYTHONPATH pointing at a checkout) has no metadata to read.
UNINSTALLED_VERSION = "0+unknown"

try:
    __version__ = metadata.version("kernelarena")
except metadata.PackageNotFoundError:
    __version__ = UNINSTALLED_VERSION
