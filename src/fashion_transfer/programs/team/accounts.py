"""One MLflow account per person (`make team-user NAME=alice ROLE=member`), made by the stack's
admin account with MLflow's own permissions, and that person's settings in one file (0600) of
shell `export` lines to `source`, with the database's password in a pgpass file and the CA
beside it. Nothing secret is printed: the command prints where the files are.

    viewer      reads every run, model and study result (MLflow's default permission, READ)
    member      also runs the project: runs in the experiment, registered versions, the champion
                rule moving the alias (EDIT), tuning workers on the study database
    maintainer  also deletes versions and grants others permissions on them (MANAGE)

A member and a maintainer are put in MLflow's role of that name, which holds USE on the
workspace (with workspaces on, MLflow lets only such an account create experiments and
registered models) and EDIT or MANAGE on the project's experiment and registered models;
rights.py has what each role may do, route by route. Only the admin account, which nobody
uses day to day, creates accounts."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fashion_transfer.files import write_secret
from fashion_transfer.programs.team.rights import GRANTED
from fashion_transfer.programs.team.stack import (
    ADMIN,
    OPTUNA_ROLE,
    Stack,
    TeamError,
    database_url,
    is_loopback,
)

ROLES = GRANTED  # role: its permission on the project's experiment and registered models
ROLE_DESCRIPTIONS = {
    "member": "runs the project: runs, versions, the champion alias (make team-user)",
    "maintainer": "a member who also deletes and grants (make team-user)",
}
# MLflow's default workspace: the project's experiment and registered models live there.
WORKSPACE = "default"
PERSON_FILES = ("settings.sh", "pgpass", "ca.pem")


def admin_client(stack: Stack, credentials: dict):
    """MLflow's client of its auth API, as the admin account (in this process only)."""
    from mlflow.server.auth.client import AuthServiceClient

    os.environ["MLFLOW_TRACKING_USERNAME"] = ADMIN
    os.environ["MLFLOW_TRACKING_PASSWORD"] = credentials["admin_password"]
    if not is_loopback(credentials["host"]):
        os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"] = str(stack.tls_folder / "ca.pem")
    return AuthServiceClient(stack.url(credentials))


def prepare_project(stack: Stack, credentials: dict, experiment: str, models: list[str]) -> dict:
    """The experiment and the registered models exist before anyone is granted them; their
    ids, for the grants."""
    import mlflow
    from mlflow.exceptions import MlflowException

    admin_client(stack, credentials)  # sets the admin's credentials for the tracking client
    client = mlflow.MlflowClient(stack.url(credentials), stack.url(credentials))
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    for name in models:
        try:
            client.create_registered_model(name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    roles = ensure_roles(admin_client(stack, credentials), experiment_id, models)
    return {"experiment_id": experiment_id, "models": models, "roles": roles}


def ensure_roles(auth, experiment_id: str, models: list[str]) -> dict[str, int]:
    """MLflow's roles `member` and `maintainer` in its default workspace, each holding what
    that role may do (`grants`); made or completed on every `up`, so that a stack keeps them
    and an experiment made again is granted again. Their ids by name."""
    found = {role.name: role for role in auth.list_roles(WORKSPACE)}
    ids = {}
    for name, permission in ROLES.items():
        if permission is None:
            continue
        role = found.get(name) or auth.create_role(WORKSPACE, name, ROLE_DESCRIPTIONS[name])
        held = {
            (grant.resource_type, grant.resource_pattern, grant.permission)
            for grant in auth.list_role_permissions(role.id)
        }
        for grant in grants(permission, experiment_id, models):
            if grant not in held:
                auth.add_role_permission(role.id, *grant)
        ids[name] = role.id
    return ids


def grants(permission: str, experiment_id: str, models: list[str]) -> list[tuple[str, str, str]]:
    """A writing role's grants: USE on the workspace (it may create experiments and registered
    models, and holds MANAGE on what it creates), `permission` on the project's experiment
    and registered models."""
    return [
        ("workspace", "*", "USE"),
        ("experiment", experiment_id, permission),
        *(("registered_model", model, permission) for model in models),
    ]


def assign_roles_of_earlier_accounts(stack: Stack, credentials: dict, project: dict) -> None:
    """Accounts made before roles were MLflow roles held their permissions one by one and
    could not create in the workspace: each gets the role its permission on the experiment
    says (EDIT a member, MANAGE a maintainer)."""
    from mlflow.exceptions import MlflowException

    auth = admin_client(stack, credentials)
    by_permission = {permission: role for role, permission in ROLES.items() if permission}
    for folder in sorted(stack.people.glob("*/settings.sh")):
        name = folder.parent.name
        if name == ADMIN:
            continue
        try:
            held_roles = {role.id for role in auth.list_user_roles(name)}  # per-user ones too
            if held_roles & set(project["roles"].values()):
                continue
            held = auth.get_user_permission(name, "experiment", project["experiment_id"])
        except MlflowException:
            continue  # an account removed in MLflow, its folder left
        if held.permission in by_permission:
            auth.assign_role(name, project["roles"][by_permission[held.permission]])


def add_person(stack: Stack, credentials: dict, name: str, role: str, project: dict) -> Path:
    """Make `name`'s account with `role` and write their settings; the settings file's path."""
    from mlflow.exceptions import MlflowException

    if role not in ROLES:
        raise TeamError(f"ROLE={role} is not a role; choose one of {', '.join(ROLES)}.")
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or name == ADMIN:
        raise TeamError(
            f"NAME={name!r} cannot be an account name: use letters, digits, '.', '-' or '_', "
            f"and not {ADMIN!r}."
        )
    folder = stack.people / name
    if (folder / "settings.sh").exists():
        raise TeamError(
            f"{name} has an account already (settings in {folder / 'settings.sh'}). To give "
            "them a new password or another role, remove the account in the MLflow UI as admin "
            f"and the folder {folder}, then run this again."
        )
    password = secrets.token_urlsafe(18)
    auth = admin_client(stack, credentials)
    try:
        auth.create_user(name, password)
        if ROLES[role]:
            auth.assign_role(name, project["roles"][role])
    except MlflowException as error:
        raise TeamError(
            f"The MLflow server refused to make {name}'s account: {error.message}"
        ) from None
    return write_settings(stack, credentials, folder, name, password, worker=role != "viewer")


def write_settings(
    stack: Stack, credentials: dict, folder: Path, name: str, password: str, worker: bool
) -> Path:
    """settings.sh (exports), pgpass (the study database's password, for workers) and the
    CA, all in `folder`; the person may move the folder: its first line says where it is."""
    for private in (stack.people, folder):
        private.mkdir(parents=True, exist_ok=True)
        private.chmod(0o700)
    host = credentials["host"]
    remote = not is_loopback(host)
    lines = [
        "# Settings of one member of the team: `source` this file (it is secret: mode 0600).",
        f'FASHION_TEAM_DIR="${{FASHION_TEAM_DIR:-{folder}}}"  # where these files are',
        f"export MLFLOW_TRACKING_URI={stack.url(credentials)}",
        f"export MLFLOW_TRACKING_USERNAME={name}",
        f"export MLFLOW_TRACKING_PASSWORD={password}",
    ]
    if remote:
        (folder / "ca.pem").write_bytes((stack.tls_folder / "ca.pem").read_bytes())
        lines.append('export MLFLOW_TRACKING_SERVER_CERT_PATH="$FASHION_TEAM_DIR/ca.pem"')
    if worker:
        port = credentials["pg_port"]
        pgpass = f"{host}:{port}:optuna:{OPTUNA_ROLE}:{credentials['optuna_db_password']}\n"
        write_secret(folder / "pgpass", pgpass.encode())
        lines += [
            f"export TUNE_STORAGE={database_url(OPTUNA_ROLE, host, port, 'optuna')}",
            'export PGPASSFILE="$FASHION_TEAM_DIR/pgpass"',
        ]
        if remote:
            lines += [
                "export PGSSLMODE=verify-full",
                'export PGSSLROOTCERT="$FASHION_TEAM_DIR/ca.pem"',
            ]
    settings = folder / "settings.sh"
    write_secret(settings, ("\n".join(lines) + "\n").encode())
    return settings
