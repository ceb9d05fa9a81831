"""fashion transfer file for ensuring the package is executable
as `fashion-transfer` and `python -m fashion_transfer`
"""

import sys
from pathlib import Path
from typing import Any

from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project

from fashion_transfer.framework import library_warnings


def main(*args, **kwargs) -> Any:
    library_warnings.silence()  # the `kedro` command runs it as a kedro.init entry point
    package_name = Path(__file__).parent.name
    configure_project(package_name)

    interactive = hasattr(sys, "ps1")
    kwargs["standalone_mode"] = not interactive

    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
