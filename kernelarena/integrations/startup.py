"""A startup file that lets the environment switch over a process that never imports kernelarena.

Python runs the ``import`` lines of every ``*.pth`` file in site-packages at interpreter start. The file
written here imports kernelarena only when ``KERNELARENA_INTEGRATIONS`` is set, and importing kernelarena
installs the integrations it names (before the serving code imports FlashInfer's functions by name):

    python -m kernelarena.integrations.startup install     # once per environment (remove: ... remove)
    KERNELARENA_INTEGRATIONS=flashinfer KERNELARENA_APPLY=/path/to/dataset python -m sglang.launch_server ...

Without the variable the line costs one environment lookup per interpreter start.
"""

from __future__ import annotations

import argparse
import site
import sys
from pathlib import Path
from typing import Optional

FILE_NAME = "kernelarena-integrations.pth"
LINE = "import os; os.environ.get('KERNELARENA_INTEGRATIONS') and __import__('kernelarena')\n"


def _site_dir(site_dir: Optional[Path]) -> Path:
    return Path(site_dir) if site_dir is not None else Path(site.getsitepackages()[0])


def write_startup_file(site_dir: Optional[Path] = None) -> Path:
    """Write the startup file into ``site_dir`` (default: the first site-packages folder); returns its path.
    Writing it again leaves the same file."""
    path = _site_dir(site_dir) / FILE_NAME
    path.write_text(LINE)
    return path


def remove_startup_file(site_dir: Optional[Path] = None) -> bool:
    """Delete the startup file; True when there was one."""
    path = _site_dir(site_dir) / FILE_NAME
    if path.exists():
        path.unlink()
        return True
    return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernelarena.integrations.startup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["install", "remove"])
    parser.add_argument("--site-dir", type=Path, default=None, help="folder to write to (default: site-packages)")
    options = parser.parse_args(argv)
    if options.action == "install":
        print(write_startup_file(options.site_dir))
    else:
        print("removed" if remove_startup_file(options.site_dir) else "no startup file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
