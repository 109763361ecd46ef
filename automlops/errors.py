"""One root for every failure a user can fix; the CLI prints these as one line, no traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AutomlopsError(Exception):
    """A problem the user can act on. `str(error)` is the whole message."""

    exit_code = 1


class ConfigError(AutomlopsError):
    """The composed config is wrong: a key, a type or a value."""

    exit_code = 2


class DataError(AutomlopsError):
    """The data cannot be loaded or does not fit the config."""


class SearchError(AutomlopsError):
    """The model search cannot run or produced nothing usable."""


class BundleError(AutomlopsError):
    """A packaged model is missing, incomplete or modified."""


class GateError(AutomlopsError):
    """The challenger failed the gate (a check or infra validation); the champion is unchanged."""


class DeployError(AutomlopsError):
    """A deploy target could not publish a blessed model (e.g. its tracking server is unreachable)."""


class RegistryError(AutomlopsError):
    """The local model registry cannot resolve or change an alias or version."""


class InputError(AutomlopsError):
    """Rows sent for prediction do not fit the model's input schema."""


class DriftDetected(AutomlopsError):
    """Monitoring found dataset or performance drift (the report is written); exit 4 for schedulers and CI."""

    exit_code = 4


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' when a close option exists, else ''."""
    close = difflib.get_close_matches(str(name), list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_name(key: str, name: str, options: Iterable[str]) -> str:
    """The standard sentence for a name that is not registered."""
    options = sorted(options)
    return f"{key}: unknown value '{name}'{did_you_mean(name, options)}; choose one of: {', '.join(options)}"
