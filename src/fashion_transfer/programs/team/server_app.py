"""The team stack's MLflow server app, `mlflow server --app-name fashion-team` (registered under
MLflow's `mlflow.app` entry points in pyproject.toml): MLflow's basic-auth app, and one rule
MLflow cannot say.

With workspaces on, MLflow lets an account create experiments and registered models only with
a workspace-wide grant (a member's or maintainer's role holds one, a viewer none), and checks
every other request against the permission on its resource. A few routes it opens to every
signed-in account although they write: generating the demo data (an experiment with traces,
prompts, datasets and review queues), the assistant (a coding agent run on the server, whose
settings it keeps there), submitting server jobs and the gateway proxy (which forwards a POST
to MLFLOW_DEPLOYMENTS_TARGET, where one is set). Here they take what a create takes: the
admin or an account that may create in the workspace (MLflow's own test for it); anyone else
gets 403, as MLflow refuses a create."""

from __future__ import annotations

# Routes MLflow opens to every signed-in account although they write: (methods, path prefix).
OPEN_WRITES = (
    (("POST",), "/ajax-api/3.0/mlflow/demo/"),
    (("POST", "PUT", "PATCH", "DELETE"), "/ajax-api/3.0/mlflow/assistant/"),
    (("POST", "PATCH"), "/ajax-api/3.0/jobs/"),
    (("POST",), "/ajax-api/2.0/mlflow/gateway-proxy"),
)
SEARCHES = ("/ajax-api/3.0/jobs/search",)  # a POST that reads (the caller's own jobs)


def is_open_write(method: str, path: str) -> bool:
    """Whether this request is one of the writes MLflow lets every signed-in account make."""
    if path in SEARCHES:
        return False
    return any(method in methods and path.startswith(prefix) for methods, prefix in OPEN_WRITES)


def may_write(username: str) -> bool:
    """The admin, or an account MLflow lets create in the request's workspace."""
    from mlflow.server import auth

    return auth.store.get_user(username).is_admin or auth._can_create_in_workspace(username)


def create_app(app=None):
    """basic-auth's app with the rule above: in Flask, after basic-auth has authenticated the
    request; in the FastAPI app around it (the assistant's and the jobs' routes), innermost, after
    basic-auth's middleware has named the account."""
    from fastapi.responses import PlainTextResponse
    from flask import request
    from mlflow.server import app as tracking_app
    from mlflow.server import auth
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware

    flask_app = app or tracking_app
    served = auth.create_app(flask_app)

    @flask_app.before_request
    def refuse_open_writes():  # runs after basic-auth's own, which let the request through
        if not is_open_write(request.method, request.path):
            return None
        found = auth.authenticate_request()
        if not hasattr(found, "username"):
            return found  # basic-auth's 401
        return None if may_write(found.username) else auth.make_forbidden_response()

    if served is flask_app:  # served by gunicorn or waitress: Flask only
        return served

    async def refuse_native_open_writes(request, call_next):
        username = getattr(request.state, "username", None)  # None: a Flask route, see above
        if username and is_open_write(request.method, request.url.path):
            if not await run_in_threadpool(may_write, username):
                return PlainTextResponse("Permission denied", status_code=403)
        return await call_next(request)

    innermost = Middleware(BaseHTTPMiddleware, dispatch=refuse_native_open_writes)
    served.user_middleware.append(innermost)
    return served
