"""The deploy section's checks and allowed names (deploy.*), run by automlops.checks before any work."""

from __future__ import annotations

import re

from automlops.config.schema import DeployConfig
from automlops.constraints import Constraints, Interval, Options, violations
from automlops.deploy.mlflow_target import check_mlflow
from automlops.deploy.targets import TARGETS
from automlops.search.engines import ENGINES

CONSTRAINTS: Constraints = {
    "example_rows": Interval(1, None),
    "docker.port": Interval(1, 65535, closed="both", note="(a TCP port)"),
}


def check_deploy(deploy: DeployConfig) -> list[str]:
    targets = Options(TARGETS.names())
    problems = [targets.problem("deploy.targets", name) for name in deploy.targets if name not in TARGETS]
    if not deploy.targets:
        problems.append("deploy.targets: name at least one target, e.g. [bundle]")
    if len(set(deploy.targets)) != len(deploy.targets):
        problems.append(f"deploy.targets: {deploy.targets} names a target twice")
    problems += violations("deploy", deploy, {"example_rows": CONSTRAINTS["example_rows"]})
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", deploy.alias) or deploy.alias.removeprefix("v").isdigit():
        problems.append(
            f"deploy.alias: '{deploy.alias}' must be a name (letters, digits, _ -; not a version number like v2)"
        )
    check_mlflow(deploy, problems)
    signing = deploy.signing
    if signing.private_key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", signing.private_key_env):
        problems.append(
            f"deploy.signing.private_key_env: '{signing.private_key_env}' must name an environment variable "
            "(letters, digits, _), e.g. AUTOMLOPS_SIGNING_KEY; put the key itself in that variable"
        )
    if any(not str(path).strip() for path in signing.public_keys):
        problems.append("deploy.signing.public_keys: an entry is empty; list public key files, e.g. [keys/signing.pub]")
    return problems + violations("deploy", deploy, {"docker.port": CONSTRAINTS["docker.port"]})


def check_refit(deploy: DeployConfig, engine: str) -> list[str]:
    """deploy.refit_all_rows needs an engine that can fit its winner again on every row (Engine.refit_all)."""
    if deploy.refit_all_rows and engine in ENGINES and ENGINES.get(engine).refit_all is None:
        return [refit_unsupported(engine)]
    return []


def refit_unsupported(engine: str) -> str:
    """AutoGluon has no refit_all yet: refit_full(train_data_extra=test rows) on a clone of the search's fit
    left them out of the first-level model in AutoGluon 1.6.3 (LightGBM_FULL: num_samples 275 of 344 rows)."""
    return (
        f"deploy.refit_all_rows: supported for the optuna engine only, not search.engine={engine}; set "
        "deploy.refit_all_rows=false (search.autogluon.refit_full already refits on train+valid)"
    )
