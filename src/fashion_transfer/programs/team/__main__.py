"""`make team-up`, `make team-user`, `make team-down`: the team stack (stack.py) and its
accounts (accounts.py) from the command line, run from the project's folder.

    python -m fashion_transfer.programs.team up [--host 127.0.0.1] [--pg-port 5433]
        [--mlflow-port 5005] [--tls-certificate F --tls-key F --tls-ca F]
    python -m fashion_transfer.programs.team user --name alice --role member
    python -m fashion_transfer.programs.team down
    python -m fashion_transfer.programs.team status

Nothing secret is printed: passwords go to files readable by their owner only."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fashion_transfer.framework import library_warnings
from fashion_transfer.programs.team import accounts, tls
from fashion_transfer.programs.team.stack import ADMIN, Stack, TeamError, is_loopback


def up(stack: Stack, args: argparse.Namespace) -> str:
    credentials = stack.credentials(args.host, args.pg_port, args.mlflow_port)
    host = credentials["host"]
    tls_on = not is_loopback(host)
    if args.tls_certificate:
        tls.install(stack.tls_folder, args.tls_certificate, args.tls_key, args.tls_ca)
    stack.init_cluster(credentials)
    stack.write_access_rules(tls_on=tls_on)
    stack.start_postgres(credentials, tls_on=tls_on)
    stack.create_roles_and_databases(credentials)
    stack.start_mlflow(credentials)
    project = accounts.prepare_project(stack, credentials, *_project_names())
    accounts.assign_roles_of_earlier_accounts(stack, credentials, project)
    admin = accounts.write_settings(
        stack, credentials, stack.people / ADMIN, ADMIN, credentials["admin_password"], False
    )
    where = "HTTPS, and PostgreSQL over TLS only" if tls_on else "on this machine only"
    return (
        f"Team stack up: MLflow at {stack.url(credentials)}, PostgreSQL at {host}:"
        f"{credentials['pg_port']} ({where}); data in {stack.folder}.\n"
        "Make an account for each person with `make team-user NAME=alice ROLE=member` "
        "(viewer, member or maintainer) and hand them the folder it names.\n"
        f"The admin account, for making accounts only, is in {admin}. "
        "`make team-down` stops the stack."
    )


def _project_names() -> tuple[str, list[str]]:
    """The experiment and registered model names the project's conf gives."""
    from fashion_transfer.framework.config import experiment_name, read_conf

    names = read_conf("parameters_registry")["registry"]["model_names"]
    return experiment_name(), list(names.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "user", "down", "status"])
    parser.add_argument("--folder", type=Path, default=Path(".team"))
    parser.add_argument("--host", help="the address to listen on (default 127.0.0.1)")
    parser.add_argument("--pg-port", type=int, default=5433)
    parser.add_argument("--mlflow-port", type=int, default=5005)
    parser.add_argument("--tls-certificate", type=Path, help="your own server certificate")
    parser.add_argument("--tls-key", type=Path, help="its private key")
    parser.add_argument("--tls-ca", type=Path, help="the CA certificate clients trust")
    parser.add_argument("--name", help="team-user: the person's account name")
    parser.add_argument("--role", help="team-user: viewer, member or maintainer")
    args = parser.parse_args(argv)
    library_warnings.silence()
    stack = Stack(args.folder)
    try:
        if args.action == "up":
            if args.tls_certificate and not (args.tls_key and args.tls_ca):
                raise TeamError("--tls-certificate needs --tls-key and --tls-ca too.")
            print(up(stack, args))
        elif args.action == "user":
            if not (args.name and args.role):
                raise TeamError("Give the person's name and role: make team-user NAME=alice "
                                "ROLE=member (viewer, member or maintainer).")  # fmt: skip
            if not stack.mlflow_pid():
                raise TeamError("The team stack is not running: `make team-up` first.")
            credentials = stack.credentials()
            project = accounts.prepare_project(stack, credentials, *_project_names())
            settings = accounts.add_person(stack, credentials, args.name, args.role, project)
            print(
                f"Made {args.name}'s account ({args.role}). Their settings are in {settings} "
                f"(secret): hand them the folder {settings.parent}; they run "
                f"`source {settings.name}` there before `kedro run`."
            )
        elif args.action == "down":
            stack.stop_mlflow()
            stack.stop_postgres()
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
