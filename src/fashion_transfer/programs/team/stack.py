"""Team mode on one machine: `make team-up` starts a PostgreSQL cluster in the project's .team/
folder and an MLflow tracking server on it (basic-auth, serving the artifacts itself), both on
127.0.0.1, and prints what to export; `make team-down` stops both and keeps the data; a second
`make team-up` reuses the cluster and the credentials it made.

    python -m fashion_transfer.programs.team up [--pg-port 5433] [--mlflow-port 5005]
    python -m fashion_transfer.programs.team down
    python -m fashion_transfer.programs.team status

PostgreSQL refuses to run as root: started by root, the cluster belongs to, and runs as, the
unprivileged `postgres` user. Problems (PostgreSQL missing, a port in use, a stale pid file)
end in a one-line `Error:` that says what to do."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from fashion_transfer.programs.processes import (
    start_server,
    stop_process_group,
    stop_server,
    wait_until_up,
)

DB_USER = "fashion"
DATABASES = ("mlflow", "mlflow_auth", "optuna")
ADMIN = "admin"
# Where Debian keeps PostgreSQL's programs when they are not on the PATH.
POSTGRES_LIBRARY = "/usr/lib/postgresql"


class TeamError(RuntimeError):
    """A problem the user can fix; the message says how."""


class Stack:
    def __init__(self, folder: Path):
        self.folder = folder.resolve()
        self.pg_folder = self.folder / "postgres"
        self.data = self.pg_folder / "data"
        self.credentials_file = self.folder / "credentials.json"
        self.mlflow_folder = self.folder / "mlflow"
        self.pid_file = self.mlflow_folder / "server.pid"
        self.log = self.mlflow_folder / "server.log"

    # -- credentials -------------------------------------------------------------------
    def credentials(self, pg_port: int, mlflow_port: int) -> dict:
        """Made on the first `up`, reused after it (the cluster keeps its password)."""
        if self.credentials_file.exists():
            return json.loads(self.credentials_file.read_text())
        made = {
            "pg_port": pg_port,
            "mlflow_port": mlflow_port,
            "pg_password": secrets.token_urlsafe(18),
            "mlflow_password": secrets.token_urlsafe(18),
            # Flask's CSRF key; every worker of the server must share it.
            "flask_secret_key": secrets.token_hex(32),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        self.credentials_file.touch(mode=0o600)
        self.credentials_file.write_text(json.dumps(made, indent=2))
        return made

    # -- PostgreSQL --------------------------------------------------------------------
    def postgres(self, program: str, *args: str, env: dict | None = None, check=True):
        """Run a PostgreSQL program, as the `postgres` user when this process is root."""
        found = shutil.which(program) or next(
            iter(sorted(Path(POSTGRES_LIBRARY).glob(f"*/bin/{program}"))), None
        )
        if found is None:
            raise TeamError(
                f"PostgreSQL's {program} is not installed. Install the server (Debian: "
                "`apt-get install postgresql`) or point the project at an existing PostgreSQL "
                "and MLflow server (README, Team mode)."
            )
        command = [str(found), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(
            command,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def init_cluster(self, password: str) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.pg_folder.mkdir(parents=True, exist_ok=True)
        password_file = self.pg_folder / "initial-password"
        password_file.write_text(password)
        if os.geteuid() == 0:
            _reachable_by_postgres(self.pg_folder)
            owner = pwd.getpwnam("postgres")
            for path in (self.pg_folder, password_file):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        try:
            self.postgres(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                DB_USER,
                "--auth=scram-sha-256",
                f"--pwfile={password_file}",
            )
        except subprocess.CalledProcessError as error:
            raise TeamError(f"initdb failed: {error.stderr.strip().splitlines()[-1]}") from None
        finally:
            password_file.unlink(missing_ok=True)

    def postgres_running(self) -> bool:
        return self.postgres("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def start_postgres(self, port: int) -> None:
        if self.postgres_running():
            return
        _port_free(port, "PostgreSQL", "--pg-port")
        options = f"-p {port} -k {self.pg_folder} -c listen_addresses=127.0.0.1"
        result = self.postgres(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.pg_folder / "server.log"),
            "-w",
            "-o",
            options,
            "start",
            check=False,
        )
        if result.returncode:
            raise TeamError(
                f"PostgreSQL did not start ({(result.stdout + result.stderr).strip()[-200:]}); "
                f"see {self.pg_folder / 'server.log'}."
            )

    def create_databases(self, credentials: dict) -> None:
        env = {"PGPASSWORD": credentials["pg_password"]}
        port = str(credentials["pg_port"])
        listed = self.postgres(
            "psql", "-h", "127.0.0.1", "-p", port, "-U", DB_USER, "-d", "postgres",
            "-Atc", "SELECT datname FROM pg_database", env=env,
        ).stdout.split()  # fmt: skip
        for name in DATABASES:
            if name not in listed:
                self.postgres(
                    "createdb", "-h", "127.0.0.1", "-p", port, "-U", DB_USER, name, env=env
                )

    def stop_postgres(self) -> None:
        if (self.data / "PG_VERSION").exists() and self.postgres_running():
            self.postgres("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    # -- MLflow ------------------------------------------------------------------------
    def mlflow_pid(self) -> int | None:
        """The running server's pid; a pid file whose process is gone is removed."""
        if not self.pid_file.exists():
            return None
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            self.pid_file.unlink()  # stale: the server died without `team down`
            return None
        return pid

    def start_mlflow(self, credentials: dict) -> None:
        if self.mlflow_pid():
            return
        port = credentials["mlflow_port"]
        _port_free(port, "the MLflow server", "--mlflow-port")
        self.mlflow_folder.mkdir(parents=True, exist_ok=True)
        store = self.url("mlflow", credentials)
        auth_ini = self.mlflow_folder / "basic_auth.ini"
        auth_ini.write_text(
            "[mlflow]\ndefault_permission = READ\n"
            f"database_uri = {self.url('mlflow_auth', credentials)}\n"
            f"admin_username = {ADMIN}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # Without a cache every request hashes the password again (PBKDF2): measured here,
            # most of a tuning trial's time with the server. A changed password is then
            # accepted by the other worker process for up to a minute.
            "auth_cache_ttl_seconds = 60\n"
        )
        env = {
            **os.environ,
            # The servers find the database password where libpq looks, never in a URL.
            "PGPASSWORD": credentials["pg_password"],
            "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
            "MLFLOW_AUTH_ADMIN_PASSWORD": credentials["mlflow_password"],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": credentials["flask_secret_key"],
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store]
        command += ["--artifacts-destination", str(self.mlflow_folder / "artifacts")]
        command += ["--serve-artifacts", "--app-name", "basic-auth", "--workers", "2"]
        command += ["--host", "127.0.0.1", "--port", str(port)]
        server = start_server(command, self.log, env, self.mlflow_folder)
        self.pid_file.write_text(str(server.pid))
        try:
            wait_until_up(f"http://127.0.0.1:{port}", server, 120, self.log, path="/health")
        except RuntimeError as error:
            stop_server(server)
            self.pid_file.unlink(missing_ok=True)
            raise TeamError(f"The MLflow server did not start: {error}") from None

    def stop_mlflow(self) -> None:
        pid = self.mlflow_pid()
        if pid is None:
            return
        stop_process_group(pid, grace=20)
        self.pid_file.unlink(missing_ok=True)

    @staticmethod
    def url(database: str, credentials: dict) -> str:
        """A PostgreSQL URL without the password (libpq reads it from PGPASSWORD)."""
        return f"postgresql+psycopg://{DB_USER}@127.0.0.1:{credentials['pg_port']}/{database}"

    def exports(self, credentials: dict) -> str:
        return "\n".join(
            [
                f"export MLFLOW_TRACKING_URI=http://127.0.0.1:{credentials['mlflow_port']}",
                f"export MLFLOW_TRACKING_USERNAME={ADMIN}",
                f"export MLFLOW_TRACKING_PASSWORD={credentials['mlflow_password']}",
                f"export PGPASSWORD={credentials['pg_password']}",
                f"export TUNE_STORAGE={self.url('optuna', credentials)}",
            ]
        )


def _reachable_by_postgres(folder: Path) -> None:
    """The postgres user must be able to walk down to the cluster's folder."""
    for parent in [*reversed(folder.parents), folder]:
        if parent.exists() and not os.stat(parent).st_mode & 0o001:
            raise TeamError(
                f"PostgreSQL runs as the postgres user, which cannot enter {parent}. Put the "
                "project in a folder others may enter (chmod o+x on the folders above it)."
            )


def _port_free(port: int, what: str, option: str) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise TeamError(
                f"Port {port} on 127.0.0.1 is in use, so {what} cannot listen there: stop "
                f"what uses it, or pick another port with {option} (make team-up ARGS=...)."
            )


def up(stack: Stack, pg_port: int, mlflow_port: int) -> str:
    if stack.credentials_file.exists():
        chosen = json.loads(stack.credentials_file.read_text())
        pg_port, mlflow_port = chosen["pg_port"], chosen["mlflow_port"]
    credentials = stack.credentials(pg_port, mlflow_port)
    stack.init_cluster(credentials["pg_password"])
    stack.start_postgres(credentials["pg_port"])
    stack.create_databases(credentials)
    stack.start_mlflow(credentials)
    return stack.exports(credentials)


def down(stack: Stack) -> None:
    stack.stop_mlflow()
    stack.stop_postgres()
