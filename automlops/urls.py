"""URLs that may hold a password (data.url, search.storage, deploy.mlflow.tracking_uri): filled in from
the environment only where they are used, checked so that no library reads part of a password as a
host or a port (and quotes that part in its error), and masked in every message.

A password may hold any character when it comes from `${oc.env:VAR}` in the user or password part:
the value is percent-encoded as it is filled in (SQLAlchemy, and so Optuna and MLflow, decode it). A
password written in clear, or inside a whole URL taken from the environment, must be percent-encoded
by hand: `@` as %40, `:` as %3A, `/` as %2F, `?` as %3F, `#` as %23, `%` as %25.

Stdlib only: the CLI imports this module to mask its messages, on every command."""

from __future__ import annotations

import os
import re
from urllib.parse import quote, unquote

from automlops.errors import ConfigError

ENV_REFERENCE = re.compile(r"\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)(?:,([^}]*))?\}")
# scheme://user:password@ in any text; the password runs to the last @ of its run of non-blank text, so a
# password holding @ or : is masked whole (a host or path that holds an @ is masked with it: never too little)
_CREDENTIALS = re.compile(r"(://[^\s:/?#]*:)(\S*)@")
_PLACEHOLDER = re.compile(r"\0(\d+)\0")
ENCODING_HINT = "percent-encode @ : / ? # % in a user name or password (%40 %3A %2F %3F %23 %25), or put the password in ${oc.env:VAR}"


def mask_secrets(text: str) -> str:
    """Hide every password a URL spells out (user:password@host) in `text`; `${oc.env:...}` references
    are not secrets and stay readable."""
    references = [match.group(0) for match in ENV_REFERENCE.finditer(text)]
    for i, reference in enumerate(references):
        text = text.replace(reference, f"\0{i}\0", 1)
    text = _CREDENTIALS.sub(
        lambda m: m.group(1) + (m.group(2) if _PLACEHOLDER.fullmatch(m.group(2)) else "***") + "@", text
    )
    return _PLACEHOLDER.sub(lambda m: references[int(m.group(1))], text)


def expand_env(value: str, key: str, url: bool = False) -> str:
    """Replace `${oc.env:VAR[,default]}` in value with the environment's value, at the point of use. In a
    URL (url=True), a value that lands in the user or password part is percent-encoded."""
    references = list(ENV_REFERENCE.finditer(value))
    userinfo = _userinfo_span(ENV_REFERENCE.sub(lambda m: "\0" * len(m.group(0)), value)) if url else None

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            found = os.environ[name]
        elif default is not None:
            found = default
        else:
            raise ConfigError(f"{key}: environment variable {name} is not set; export {name}=... before running")
        inside = userinfo is not None and userinfo[0] <= match.start() and match.end() <= userinfo[1]
        return quote(found, safe="") if inside else found

    return ENV_REFERENCE.sub(substitute, value) if references else value


def connect_url(written: str, key: str) -> str:
    """The URL to connect with: `written` (as in params.yaml) with the environment filled in, refused with
    a one-line ConfigError, naming no part of it, when its user, password, host and port cannot be told
    apart (a password holding a bare @ or /)."""
    url = expand_env(written, key, url=True)
    problem = url_problem(url, key)
    if problem:
        raise ConfigError(problem)
    return url


def url_problem(written: str, key: str) -> str:
    """The config check's sentence for a URL whose parts cannot be told apart, or ''. Environment
    references count as plain text here (what they hold is only known where the URL is used)."""
    problem = _ambiguity(ENV_REFERENCE.sub("x", written))
    return (
        f"{key}: cannot tell the URL's user, password, host and port apart ({problem}); {ENCODING_HINT}"
        if problem
        else ""
    )


def scrub(text: str, url: str) -> str:
    """`text` (a library's error) with the password of `url` removed, however it was spelled."""
    text = mask_secrets(text)
    span = _userinfo_span(url)
    if span:
        password = url[span[0] : span[1]].partition(":")[2]
        for form in sorted({password, unquote(password)}, key=len, reverse=True):
            if len(form) >= 3:
                text = text.replace(form, "***")
    return text


def _userinfo_span(url: str) -> tuple[int, int] | None:
    """Where user[:password] lies in scheme://user[:password]@host...: from after :// to the last @ of
    the authority (which ends at the first / ? or #); None without one."""
    match = re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://([^/?#]*)", url)
    if not match or "@" not in match.group(1):
        return None
    return match.start(1), match.start(1) + match.group(1).rindex("@")


def _ambiguity(url: str) -> str:
    """Why a URL's authority is ambiguous (no part of it quoted), or ''."""
    match = re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://([^/?#]*)", url)
    if not match:
        return ""
    authority = match.group(1)
    if authority.count("@") > 1:
        return "more than one @ before the host"
    host = authority.rpartition("@")[2]
    port = host.rpartition("]")[2].partition(":")[2] if host.startswith("[") else host.partition(":")[2]
    if ":" in host.rpartition("]")[2] and not port.isdigit():
        return "what follows the host's : is not a port number"
    return ""
