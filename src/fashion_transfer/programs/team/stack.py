"""The team stack on the machine that serves the team: a PostgreSQL cluster in the project's
.team/ folder and an MLflow tracking server on it (basic-auth, serving the artifacts itself),
listening on 127.0.0.1 or on the address given (`make team-up HOST=10.0.0.5`). Off loopback
everything is encrypted: the MLflow server speaks HTTPS and PostgreSQL takes TLS connections
only, with certificates of the stack's own CA (tls.py) that clients verify.

The database has three roles, none handed to a person: the cluster's superuser (`fashion`,
used by team-up itself), the MLflow server's (`mlflow`, owning its two databases) and the
tuning workers' (`optuna`, owning the study database and unable to connect to MLflow's). The
MLflow server's `admin` account creates the people's accounts (accounts.py) and nothing else.

PostgreSQL refuses to run as root: started by root, the cluster belongs to, and runs as, the
unprivileged `postgres` user. Problems (PostgreSQL missing, a port in use, a damaged
credentials file) end in a one-line `Error:` that says what to do."""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

from fashion_transfer.files import write_secret
from fashion_transfer.programs.processes import (
    start_server,
    stop_process_group,
    stop_server,
    wait_until_up,
)
from fashion_transfer.programs.team import tls

SUPERUSER = "fashion"  # the cluster's superuser: team-up's own, never handed out
MLFLOW_ROLE, OPTUNA_ROLE = "mlflow", "optuna"
DATABASES = {"mlflow": MLFLOW_ROLE, "mlflow_auth": MLFLOW_ROLE, "optuna": OPTUNA_ROLE}
ADMIN = "admin"
LOOPBACK = "127.0.0.1"
# Where Debian keeps PostgreSQL's programs when they are not on the PATH.
POSTGRES_LIBRARY = "/usr/lib/postgresql"
SECRETS = (
    "superuser_password",
    "mlflow_db_password",
    "optuna_db_password",
    "admin_password",
    "flask_secret_key",
)


class TeamError(RuntimeError):
    """A problem the user can fix; the message says how."""


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Stack:
    def __init__(self, folder: Path):
        self.folder = folder.resolve()
        self.pg_folder = self.folder / "postgres"
        self.data = self.pg_folder / "data"
        self.credentials_file = self.folder / "credentials.json"
        self.mlflow_folder = self.folder / "mlflow"
        self.tls_folder = self.folder / "tls"
        self.people = self.folder / "people"
        self.pid_file = self.mlflow_folder / "server.pid"
        self.log = self.mlflow_folder / "server.log"

    # -- credentials -------------------------------------------------------------------
    def credentials(self, host: str | None = None, pg_port: int = 5433, mlflow_port: int = 5005):
        """The stack's settings and secrets, made on the first `up` and reused after it (the
        cluster keeps its passwords); a stack made before roles were separated gets its new
        secrets. `host` changes where it listens."""
        if self.credentials_file.exists():
            try:
                found = json.loads(self.credentials_file.read_text())
                if not isinstance(found, dict) or "pg_port" not in found:
                    raise ValueError("not the stack's settings")
            except (OSError, ValueError) as error:
                raise TeamError(
                    f"{self.credentials_file} is damaged ({error}), so the stack's passwords "
                    "are unknown. Restore it from a backup; or, to start a new, empty stack, "
                    f"run `make team-down` and move {self.folder} aside."
                ) from None
        elif (self.data / "PG_VERSION").exists():
            raise TeamError(
                f"{self.credentials_file} is missing, so the passwords of the cluster in "
                f"{self.data} are unknown. Restore the file from a backup; or, to start a new, "
                f"empty stack, run `make team-down` and move {self.folder} aside."
            )
        else:
            found = {"host": host or LOOPBACK, "pg_port": pg_port, "mlflow_port": mlflow_port}
        found.setdefault("host", LOOPBACK)
        if "pg_password" in found:  # made by the stack before roles were separated
            found["superuser_password"] = found.pop("pg_password")
            found["admin_password"] = found.pop("mlflow_password")
        for key in SECRETS:
            if key not in found:
                found[key] = secrets.token_hex(32) if key == "flask_secret_key" else (
                    secrets.token_urlsafe(18)
                )  # fmt: skip
        if host:
            found["host"] = host
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o711)  # the postgres user walks through it; nobody lists it
        write_secret(self.credentials_file, json.dumps(found, indent=2).encode())
        return found

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

    def init_cluster(self, credentials: dict) -> None:
        """A new cluster whose only role is the superuser, trusted on the cluster's private
        socket until its password is set; no password is ever written to a file."""
        if (self.data / "PG_VERSION").exists():
            return
        self.pg_folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            _reachable_by_postgres(self.pg_folder)
            owner = pwd.getpwnam("postgres")
            os.chown(self.pg_folder, owner.pw_uid, owner.pw_gid)
        self.pg_folder.chmod(0o700)
        try:
            self.postgres(
                "initdb", "-D", str(self.data), "-U", SUPERUSER,
                "--auth-local=trust", "--auth-host=scram-sha-256",
            )  # fmt: skip
        except subprocess.CalledProcessError as error:
            raise TeamError(f"initdb failed: {error.stderr.strip().splitlines()[-1]}") from None
        self.write_access_rules(tls_on=False, trust_socket=True)
        self.start_postgres(credentials, tls_on=False)
        password = credentials["superuser_password"].replace("'", "''")
        statement = f"ALTER ROLE {SUPERUSER} PASSWORD '{password}'"
        self.postgres(
            "psql", "-h", str(self.pg_folder), "-p", str(credentials["pg_port"]),
            "-U", SUPERUSER, "-d", "postgres", "-qc", statement,
        )  # fmt: skip
        self.stop_postgres()

    def write_access_rules(self, tls_on: bool, trust_socket: bool = False) -> None:
        """pg_hba.conf: passwords (SCRAM) on loopback; off loopback, TLS connections only."""
        rules = [
            "# Written by `make team-up`: each start writes it again.",
            f"local all all {'trust' if trust_socket else 'scram-sha-256'}",
            "host all all 127.0.0.1/32 scram-sha-256",
            "host all all ::1/128 scram-sha-256",
        ]
        if tls_on:
            rules += [
                "hostssl all all 0.0.0.0/0 scram-sha-256",
                "hostssl all all ::/0 scram-sha-256",
            ]
        rules += ["hostnossl all all 0.0.0.0/0 reject", "hostnossl all all ::/0 reject"]
        path = self.data / "pg_hba.conf"
        path.write_text("\n".join(rules) + "\n")
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def postgres_running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        return self.postgres("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def start_postgres(self, credentials: dict, tls_on: bool) -> None:
        if self.postgres_running():
            self.stop_postgres()  # listen where this `up` says, with its certificates
        port = credentials["pg_port"]
        host = credentials["host"]
        _port_free(LOOPBACK, port, "PostgreSQL", "--pg-port")
        listen = LOOPBACK if is_loopback(host) else f"{LOOPBACK},{host}"
        options = f"-p {port} -k {self.pg_folder} -c listen_addresses={listen}"
        if tls_on:
            certificate, key = self._postgres_copies(tls.ensure(self.tls_folder, host))
            options += f" -c ssl=on -c ssl_cert_file={certificate}"
            options += f" -c ssl_key_file={key} -c ssl_min_protocol_version=TLSv1.2"
        result = self.postgres(
            "pg_ctl", "-D", str(self.data), "-l", str(self.pg_folder / "server.log"),
            "-w", "-o", options, "start", check=False,
        )  # fmt: skip
        if result.returncode:
            raise TeamError(
                f"PostgreSQL did not start ({(result.stdout + result.stderr).strip()[-200:]}); "
                f"see {self.pg_folder / 'server.log'}."
            )

    def _postgres_copies(self, certificates: tls.Certificates) -> tuple[Path, Path]:
        """The server certificate and key where PostgreSQL reads them: owned by its user, the
        key readable by nobody else (it refuses it otherwise); tls/ itself stays root's."""
        copies = []
        for source in (certificates.certificate, certificates.key):
            target = self.pg_folder / f"server-{source.name}"
            write_secret(target, source.read_bytes())
            if os.geteuid() == 0:
                owner = pwd.getpwnam("postgres")
                os.chown(target, owner.pw_uid, owner.pw_gid)
            copies.append(target)
        return copies[0], copies[1]

    def sql(self, credentials: dict, statement: str, database: str = "postgres") -> str:
        """Run SQL as the superuser, over loopback, the password in the environment."""
        result = self.postgres(
            "psql", "-h", LOOPBACK, "-p", str(credentials["pg_port"]), "-U", SUPERUSER,
            "-d", database, "-v", "ON_ERROR_STOP=1", "-Atqc", statement,
            env={"PGPASSWORD": credentials["superuser_password"]}, check=False,
        )  # fmt: skip
        if result.returncode:
            raise TeamError(f"PostgreSQL refused `{statement[:60]}...`: {result.stderr.strip()}")
        return result.stdout

    def create_roles_and_databases(self, credentials: dict) -> None:
        """The MLflow server's and the tuning workers' roles, each owning its databases, and
        no database open to any other role (PUBLIC's CONNECT revoked). A stack made before
        roles were separated has its databases and tables handed to their roles."""
        existing_roles = set(self.sql(credentials, "SELECT rolname FROM pg_roles").split())
        for role, key in ((MLFLOW_ROLE, "mlflow_db_password"), (OPTUNA_ROLE, "optuna_db_password")):
            password = credentials[key].replace("'", "''")
            verb = "ALTER" if role in existing_roles else "CREATE"
            self.sql(credentials, f"{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB "
                     f"NOCREATEROLE PASSWORD '{password}'")  # fmt: skip
        listed = set(self.sql(credentials, "SELECT datname FROM pg_database").split())
        for database, owner in DATABASES.items():
            if database not in listed:
                self.sql(credentials, f"CREATE DATABASE {database} OWNER {owner}")
            self.sql(credentials, f"ALTER DATABASE {database} OWNER TO {owner}")
            self.sql(credentials, f"REVOKE ALL ON DATABASE {database} FROM PUBLIC")
            self.sql(credentials, f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {owner}")
            # Tables made by a stack before roles were separated belong to the superuser.
            self.sql(
                credentials,
                "DO $$ DECLARE t record; BEGIN FOR t IN SELECT schemaname, tablename FROM "
                "pg_tables WHERE schemaname = 'public' AND tableowner <> "
                f"'{owner}' LOOP EXECUTE format('ALTER TABLE %I.%I OWNER TO {owner}', "
                "t.schemaname, t.tablename); END LOOP; FOR t IN SELECT sequence_schema AS s, "
                "sequence_name AS n FROM information_schema.sequences WHERE sequence_schema = "
                f"'public' LOOP EXECUTE format('ALTER SEQUENCE %I.%I OWNER TO {owner}', t.s, "
                "t.n); END LOOP; END $$",
                database,
            )

    def stop_postgres(self) -> None:
        if self.postgres_running():
            self.postgres("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    # -- MLflow ------------------------------------------------------------------------
    def mlflow_pid(self) -> int | None:
        """The running server's pid: a pid file counts only while that process is this
        stack's MLflow server (its command line says so); a stale one is removed."""
        if not self.pid_file.exists():
            return None
        try:
            pid = int(self.pid_file.read_text().strip())
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (ValueError, OSError):
            self.pid_file.unlink(missing_ok=True)  # stale: the server died without team down
            return None
        ours = str(self.mlflow_folder / "artifacts").encode()
        if b"server" not in command or ours not in command:
            self.pid_file.unlink(missing_ok=True)  # that pid is another program's now
            return None
        return pid

    def url(self, credentials: dict) -> str:
        scheme = "http" if is_loopback(credentials["host"]) else "https"
        return f"{scheme}://{credentials['host']}:{credentials['mlflow_port']}"

    def start_mlflow(self, credentials: dict) -> None:
        if self.mlflow_pid():
            self.stop_mlflow()  # listen where this `up` says, with its certificates
        host, port = credentials["host"], credentials["mlflow_port"]
        _port_free(host, port, "the MLflow server", "--mlflow-port")
        self.mlflow_folder.mkdir(parents=True, exist_ok=True)
        self.mlflow_folder.chmod(0o700)
        store = database_url(MLFLOW_ROLE, LOOPBACK, credentials["pg_port"], "mlflow")
        auth_ini = self.mlflow_folder / "basic_auth.ini"
        auth_store = database_url(MLFLOW_ROLE, LOOPBACK, credentials["pg_port"], "mlflow_auth")
        auth_ini.write_text(
            "[mlflow]\ndefault_permission = READ\n"
            # Everyone signed in reads the default workspace; creating there takes a
            # workspace-wide grant (accounts.py), which viewers do not hold.
            "grant_default_workspace_access = true\n"
            f"database_uri = {auth_store}\n"
            f"admin_username = {ADMIN}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # Without a cache every request hashes the password again (PBKDF2): measured here,
            # most of a tuning trial's time with the server. A changed password is then
            # accepted by the other worker process for up to a minute.
            "auth_cache_ttl_seconds = 60\n"
        )
        env = {
            **os.environ,
            # The server finds the database password where libpq looks, never in a URL.
            "PGPASSWORD": credentials["mlflow_db_password"],
            "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
            "MLFLOW_AUTH_ADMIN_PASSWORD": credentials["admin_password"],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": credentials["flask_secret_key"],
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            # The project calls no language model: no provider keys kept, no calls out.
            "MLFLOW_ENABLE_AI_GATEWAY": "false",
        }
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store]
        command += ["--artifacts-destination", str(self.mlflow_folder / "artifacts")]
        # basic-auth and the rule MLflow lacks (server_app.py)
        command += ["--serve-artifacts", "--app-name", "fashion-team", "--workers", "2"]
        # With workspaces a create needs a workspace-wide grant; without, any account may.
        command += ["--enable-workspaces"]
        command += ["--host", host, "--port", str(port)]
        # MLflow answers only the Host headers it is told (a guard against DNS rebinding).
        command += ["--allowed-hosts", f"{host}:{port},{host},localhost:{port},localhost"]
        context = None
        if not is_loopback(host):
            certificates = tls.ensure(self.tls_folder, host)
            command += ["--uvicorn-opts", f"--ssl-keyfile {certificates.key} "
                        f"--ssl-certfile {certificates.certificate}"]  # fmt: skip
            context = ssl.create_default_context(cafile=str(certificates.ca))
        server = start_server(command, self.log, env, self.mlflow_folder)
        write_secret(self.pid_file, str(server.pid).encode())
        try:
            wait_until_up(self.url(credentials), server, 120, self.log, "/health", context)
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


def database_url(role: str, host: str, port: int, database: str) -> str:
    """A PostgreSQL URL without the password (libpq reads it from PGPASSWORD or a pgpass file)."""
    return f"postgresql+psycopg://{role}@{host}:{port}/{database}"


def _reachable_by_postgres(folder: Path) -> None:
    """The postgres user must be able to walk down to the cluster's folder."""
    for parent in [*reversed(folder.parents), folder]:
        if parent.exists() and not os.stat(parent).st_mode & 0o001:
            raise TeamError(
                f"PostgreSQL runs as the postgres user, which cannot enter {parent}. Put the "
                "project in a folder others may enter (chmod o+x on the folders above it)."
            )


def _port_free(host: str, port: int, what: str, option: str) -> None:
    with socket.socket() as probe:
        probe.settimeout(2)
        if probe.connect_ex((host, port)) == 0:
            raise TeamError(
                f"Port {port} on {host} is in use, so {what} cannot listen there: stop what "
                f"uses it, or pick another port with {option} (make team-up ARGS=...)."
            )
