"""`make team-up` / `make team-down`: the team stack (stack.py) from the command line.

python -m fashion_transfer.programs.team up [--pg-port 5433] [--mlflow-port 5005]
python -m fashion_transfer.programs.team down
python -m fashion_transfer.programs.team status"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fashion_transfer.programs.team.stack import Stack, TeamError, down, up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--folder", type=Path, default=Path(".team"))
    parser.add_argument("--pg-port", type=int, default=5433)
    parser.add_argument("--mlflow-port", type=int, default=5005)
    args = parser.parse_args(argv)
    stack = Stack(args.folder)
    try:
        if args.action == "up":
            exports = up(stack, args.pg_port, args.mlflow_port)
            print(
                f"Team stack up (data in {stack.folder}; `make team-down` stops it).\n"
                "Point the project at it with:\n"
                f"{exports}\n"
                "and tune on the shared study with "
                "`kedro run --pipeline tune --params tune.storage=$TUNE_STORAGE`."
            )
        elif args.action == "down":
            down(stack)
            print(f"Team stack stopped; its data stays in {stack.folder}.")
        else:
            print(
                f"PostgreSQL: {'running' if stack.postgres_running() else 'stopped'}; "
                f"MLflow server: {'running' if stack.mlflow_pid() else 'stopped'}"
            )
    except TeamError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
