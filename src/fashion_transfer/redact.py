"""URLs as they may be shown: in logs, MLflow tags and parameters, error messages. A password
(or token) in a URL, in its user part (`user:secret@host`) or its query (`?password=secret`),
is replaced by `***`; everything else stays, so that the URL still says where it points."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_KEYS = ("password", "passwd", "pwd", "secret", "token", "access_token", "api_key", "key")
HIDDEN = "***"


def redact(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':' + HIDDEN if colon else ''}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key.lower() in SECRET_KEYS for key, _ in pairs):
            query = urlencode(
                [(key, HIDDEN if key.lower() in SECRET_KEYS else value) for key, value in pairs],
                safe="*",
            )
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing hidden: the URL exactly as given
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def holds_secret(url: str) -> bool:
    return redact(url) != url
