"""What each role of the team stack may do, as one table. Every route MLflow's server answers is
sorted by the resource it touches and the kind of request it is (`resource_of`, `kind_of`);
`CELLS` says what each (resource, kind) requires, `EXCEPTIONS` the routes MLflow decides
otherwise, and `ALLOWS` what each role holds. docs/team-mode.md's table is `markdown()`, and
tests/e2e/test_team_network.py sends every route as every role from a second machine and checks
each answer against `expected()`: the docs, the grants and the server cannot drift apart.

An answer is one of four classes: `401` (who are you?), `403` (not yours to do), `400` (a
request MLflow refuses before any decision, for everyone but the admin) and `ok`: the server's
authorization let it through, and the handler answered (200, or 400/404/501 where the request
names something made up or the feature is off)."""

from __future__ import annotations

import re

ROLES = ("anonymous", "viewer", "member", "maintainer", "admin")
# What `make team-user` grants each role on the project's experiment and registered models
# (with, for a writing role, USE on the workspace: it may create there).
GRANTED = {"viewer": None, "member": "EDIT", "maintainer": "MANAGE"}
KINDS = ("read", "create", "update", "delete", "invoke")

# What a request may require, weakest first, and which roles hold it. `create` is MLflow's
# workspace-wide USE grant; `update` EDIT and `manage` MANAGE on the project's experiment and
# registered models (or on what the account created itself); `admin` the admin alone (or an
# object's creator: no role is granted objects outside the project); `nobody` no account from
# another machine (the assistant runs on the server's own machine only).
REQUIREMENTS = ("open", "signed in", "read", "create", "update", "manage", "admin", "nobody")
ALLOWS = {
    "anonymous": {"open"},
    "viewer": {"open", "signed in", "read"},
    "member": {"open", "signed in", "read", "create", "update"},
    "maintainer": {"open", "signed in", "read", "create", "update", "manage"},
    "admin": {"open", "signed in", "read", "create", "update", "manage", "admin"},
}
# A request no non-admin gets past: MLflow's validator finds nothing to check and answers 400.
MALFORMED = "malformed"

# Resources, in the docs' order: name, what the docs call it, the kinds of request its routes
# make (the matrix test checks them against MLflow's routes), its routes (paths less /api/N.0/).
RESOURCES = (
    ("experiments", "experiments and their tags", "rcud", r"mlflow/experiments/(?!search-da)"),
    (
        "runs",
        "runs: metrics, parameters, tags, inputs, outputs",
        "rcudi",
        r"mlflow/(runs|metrics)/|mlflow/experiments/search-datasets$|(ajax-)?api/2\.0mlflow/",
    ),
    (
        "artifacts",
        "run artifacts, through the server",
        "rud",
        r"mlflow-artifacts/|mlflow/artifacts/|get-artifact$|mlflow/upload-artifact$",
    ),
    ("logged models", "the models runs log", "rcud", r"mlflow/logged-models"),
    (
        "registered models",
        "registered models, their tags",
        "rcud",
        r"mlflow/registered-models/"
        r"(?!alias$)",
    ),  # fmt: skip
    ("versions", "their versions, tags, files", "rcud", r"mlflow/model-versions/|model-versions/"),
    ("aliases", "`champion` and the other aliases", "ru", r"mlflow/registered-models/alias$"),
    (
        "traces",
        "traces, their tags and assessments",
        "rcud",
        r"mlflow/(traces|unified-traces|get-online-trace-details|get-trace-artifact)|v1/",
    ),
    (
        "evaluation",
        "GenAI evaluation: datasets, scorers, label schemas, review queues, issues",
        "rcudi",
        r"mlflow/(datasets|scorers?|label-schemas|review-queues|issues|prompt-optimization|genai)",
    ),
    ("AI gateway", "the AI gateway (off in the stack)", "rcudi", r"(mlflow/)?gateway"),
    ("webhooks", "webhooks", "rcudi", r"mlflow/webhooks"),
    ("MCP servers", "the MCP server registry", "rcud", r"mlflow/mcp-servers"),
    ("workspaces", "workspaces (the stack has one)", "rcud", r"mlflow/workspaces"),
    ("accounts", "accounts, roles and grants", "rcud", r"mlflow/(users|roles)/|signup$"),
    (
        "server tools",
        "demo data, the assistant, jobs",
        "rdi",
        r"mlflow/(demo|assistant|jobs)/|jobs/",
    ),
    (
        "server and UI",
        "the web UI, health, version, GraphQL",
        "r",
        r"$|health$|version$|static-files/|build/|mlflow/(server-info|ui-telemetry)$|graphql$",
    ),
)
KIND_LETTERS = {"r": "read", "c": "create", "u": "update", "d": "delete", "i": "invoke"}


def kinds_of_resource(name: str) -> list[str]:
    letters = next(kinds for resource, _, kinds, _ in RESOURCES if resource == name)
    return [KIND_LETTERS[letter] for letter in letters]


# What each (resource, kind) requires; a kind not named takes DEFAULT's.
DEFAULT = {"read": "read", "create": "create", "update": "update", "delete": "manage",
           "invoke": "create"}  # fmt: skip
CELLS = {
    "AI gateway": {"create": "admin", "update": "admin", "delete": "admin", "invoke": "admin"},
    "webhooks": {kind: "admin" for kind in KINDS},
    "MCP servers": {"update": "admin", "delete": "admin"},
    "workspaces": {kind: "admin" for kind in KINDS} | {"read": "signed in"},
    "accounts": {kind: "admin" for kind in KINDS},
    "server tools": {"read": "signed in", "delete": "admin"},
    "server and UI": {"read": "signed in"},
}

# Routes MLflow decides otherwise than their cell: (requirement, "METHOD path" pattern, why).
EXCEPTIONS = (
    ("open", r"GET (health|static-files/.+|mlflow/server-info)$", "MLflow's unprotected routes"),
    ("admin", r"GET build/", "MLflow denies a route it has no rule for"),
    ("admin", r"POST (ajax-)?api/2\.0mlflow/", "MLflow misspells this path: no rule matches"),
    ("signed in", r"GET mlflow/users/current(/permissions)?$", "one's own account"),
    ("create", r"GET mlflow/roles/list$", "an account with a role sees the workspace's"),
    ("admin", r"GET mlflow/workspaces/<workspace_name>$", "MLflow: the admin's"),
    ("admin", r"POST mlflow/issues/invoke$", "USE on a gateway endpoint"),
    ("create", r"GET mlflow/users/list$", "an account of the workspace sees its accounts"),
    ("manage", r"POST mlflow/users/permissions/(grant|revoke)$", "MANAGE on the object"),
    ("admin", r"GET mlflow/(unified-traces|get-online-trace-details)$", "the admin's views"),
    ("manage", r"DELETE mlflow/(model-versions/delete-tag|registered-models/alias)$", "a delete"),
    ("manage", r"DELETE mlflow/logged-models/<model_id>/tags/", "a delete"),
    ("update", r"DELETE mlflow/traces/<trace_id>/assessments/", "an assessment is an edit"),
    ("admin", r"POST mlflow/mcp-servers/\{name\}/(versions|endpoints)$", "its creator's"),
    ("admin", r"(PATCH|DELETE) mlflow/datasets/<dataset_id>(/tags.*)?$", "its creator's"),
    ("admin", r"DELETE mlflow/scorers/delete$", "its creator's"),
    ("admin", r"\S+ mlflow/prompt-optimization/jobs/<job_id>", "its creator's"),
    ("manage", r"\S+ mlflow/label-schemas/(create|update)$", "MANAGE on the experiment"),
    (
        "manage",
        r"(GET|POST) mlflow/review-queues/(get|items/list|items/remove|update)$",
        "MANAGE on the experiment, or the queue's reviewer",
    ),  # fmt: skip
    ("admin", r"POST mlflow/review-queues/items/set-status$", "the queue's reviewer"),
    (
        "admin",
        r"GET mlflow/gateway/(\w+/bindings/list|(secrets|endpoints|model-definitions|"
        r"guardrails)/get|guardrails/list.*)$",
        "a gateway object's creator's",
    ),  # fmt: skip
    ("create", r"POST mlflow/gateway/(secrets|endpoints)/create$", "USE on the workspace"),
    (MALFORMED, r"POST gateway/openai/v1/responses/compact$", "no endpoint name to check"),
    ("signed in", r"POST jobs/search$", "one's own jobs"),
    ("admin", r"(GET|PATCH) (mlflow/)?jobs/", "its creator's"),
    ("create", r"POST mlflow/gateway-proxy$", "no permission in MLflow: the stack's rule"),
    (
        "nobody",
        r"(POST|PUT|PATCH) mlflow/assistant/|GET mlflow/assistant/(sessions|providers)/",
        "the server's own machine only",
    ),  # fmt: skip
    ("signed in", r"POST mlflow/ui-telemetry$", "telemetry is off: nothing is kept"),
    ("signed in", r"(GET|POST) graphql$", "GraphQL reads, each object checked"),
)

# POSTs that only read.
READ_POSTS = re.compile(
    r"/(search|get-latest-versions|batchGetInfos|calculate-filter-correlation|metrics|"
    r"search-datasets|presigned-download-url|ui-telemetry)$|^graphql$"
)
RUN = re.compile(
    r"^gateway/|/gateway-proxy$|/invoke$|/assistant/|(^|/)jobs/|/demo/generate$|"
    r"create-promptlab-run$|/webhooks/<webhook_id>/test$"
)
CREATE = re.compile(
    r"/(create|register|create-ui|get-or-create-user)$|^v1/traces$|/assessments$|"
    r"^mlflow/(logged-models|traces|issues|webhooks|mcp-servers|workspaces)$|"
    r"/(versions|endpoints)$|/prompt-optimization/jobs$"
)
DELETE = re.compile(r"/(delete|restore|delete-traces)$")
PARTS = re.compile(r"/tags|-tag$|alias|/records$|/items/|remove|detach|unassign|revoke|bindings")


def short(route: str) -> str:
    """The route without its /api/N.0/ or /ajax-api/N.0/ prefix (and its leading slash)."""
    return re.sub(r"^/((ajax-)?api/\d\.0/)?", "", route)


def resource_of(route: str) -> str | None:
    path = short(route)
    return next((name for name, _, _, rule in RESOURCES if re.match(rule, path)), None)


def kind_of(method: str, route: str) -> str:
    path = short(route)
    if RUN.search(path) and method != "GET" and not path.endswith("/search"):
        return "invoke"
    if method == "GET" or READ_POSTS.search(path):
        return "read"
    if method == "POST" and CREATE.search(path) and not path.endswith("/alias"):
        return "create"
    if DELETE.search(path) and not PARTS.search(path.rsplit("/", 1)[0] + "/"):
        return "delete"
    if method == "DELETE" and not PARTS.search(path):
        return "delete"
    return "update"


def requirement(method: str, route: str) -> str:
    """What the route requires: its exception's, else its (resource, kind) cell's."""
    request = f"{method} {short(route)}"
    for required, pattern, _ in EXCEPTIONS:
        if re.match(pattern, request):
            return required
    resource, kind = resource_of(route), kind_of(method, route)
    return CELLS.get(resource, {}).get(kind, DEFAULT[kind])


def expected(method: str, route: str, role: str) -> str:
    """The class of answer `role` gets: 401, 403, 400 or ok."""
    required = requirement(method, route)
    if role == "admin" and required != "nobody":
        return "ok"
    if required == MALFORMED:
        return "401" if role == "anonymous" else "400"
    if required in ALLOWS[role]:
        return "ok"
    return "401" if role == "anonymous" else "403"


def answer_class(status: int) -> str:
    return {401: "401", 403: "403"}.get(status, "ok")


def markdown() -> str:
    """docs/team-mode.md's table: what each role may do to each resource, by kind of request."""
    lines = ["| resource | viewer | member | maintainer |", "| --- | --- | --- | --- |"]
    for name, label, _, _ in RESOURCES:
        cells = []
        for role in ("viewer", "member", "maintainer"):
            kinds = [
                kind for kind in kinds_of_resource(name)
                if CELLS.get(name, {}).get(kind, DEFAULT[kind]) in ALLOWS[role]
            ]  # fmt: skip
            cells.append(", ".join(kinds) or "nothing")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)
