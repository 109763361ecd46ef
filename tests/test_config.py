"""Composition of conf/ with Hydra, the typed schema, cross-field checks, the search space, secrets
in ${oc.env:...} and the stale-params guard."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import REPO, cli
from omegaconf import OmegaConf

from automlops.checks import load_params, to_typed
from automlops.config.compose import compose, write_params
from automlops.config.resolvers import expand_env, mask_env
from automlops.data.sources import SOURCES
from automlops.deploy.targets import TARGETS
from automlops.errors import ConfigError
from automlops.search.engines import ENGINES
from automlops.search.families import FAMILIES, parse_space
from automlops.search.samplers import SAMPLERS
from automlops.search.space import Fixed, suggest
from automlops.urls import connect_url

EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))
DATA_OPTIONS = sorted(p.stem for p in (REPO / "conf" / "data").glob("*.yaml"))


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Compose against this repository's conf/ (read only: nothing here writes)."""
    monkeypatch.chdir(REPO)
    return REPO


def typed(*overrides: str):
    return to_typed(compose(list(overrides)))


def flatten(node: object, prefix: str = "") -> dict[str, object]:
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, object] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


# --- composition -------------------------------------------------------------------------------


def test_conf_has_experiments_and_data_options() -> None:
    assert EXPERIMENTS, "conf/experiment/ holds no experiment"
    assert len(DATA_OPTIONS) >= 2


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_passes_checks(in_repo: Path, name: str) -> None:
    cfg = compose([f"+experiment={name}"])
    config = to_typed(cfg)  # raises on any schema or check problem
    # every value the experiment sets (besides its defaults list) is what the composed config holds
    written = yaml.safe_load((in_repo / "conf" / "experiment" / f"{name}.yaml").read_text())
    written.pop("defaults", None)
    composed = OmegaConf.to_container(cfg)
    for key, value in flatten(written).items():
        assert OmegaConf.select(cfg, key) == value, f"{name}: {key}"
    assert composed["conf_digest"]
    assert config.run.name


@pytest.mark.parametrize("name", DATA_OPTIONS)
def test_every_data_option_composes_and_passes_checks(in_repo: Path, name: str) -> None:
    config = typed(f"data={name}")
    written = yaml.safe_load((in_repo / "conf" / "data" / f"{name}.yaml").read_text())
    assert config.data.source == written["source"]
    assert config.data.target == written["target"]


def test_committed_params_yaml_is_what_compose_produces(in_repo: Path) -> None:
    """params.yaml in the repository is fresh: exactly `automlops compose` with no overrides."""
    committed = yaml.safe_load((in_repo / "params.yaml").read_text())  # comments (the header) are dropped
    composed = OmegaConf.to_container(compose([]))
    assert committed["conf_digest"] == composed["conf_digest"], "params.yaml was composed from an older conf/"
    differences = {
        k: (v, flatten(composed).get(k)) for k, v in flatten(committed).items() if flatten(composed).get(k) != v
    }
    assert not differences, f"params.yaml differs from `automlops compose` (committed, composed): {differences}"
    assert committed == composed


# --- composition errors ------------------------------------------------------------------------


def test_misspelled_top_level_key_names_it_and_suggests_the_right_one(in_repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"serch") as caught:
        compose(["serch.n_trials=3"])
    assert "did you mean 'search.n_trials'" in str(caught.value)  # the whole key


def test_misspelled_nested_key_suggests_the_right_one(in_repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"search\.n_trial") as caught:
        compose(["search.n_trial=3"])
    assert "did you mean 'search.n_trials'" in str(caught.value)


def test_wrong_type_names_the_key_and_the_value(in_repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"search\.n_trials") as caught:
        compose(["search.n_trials=abc"])
    assert "abc" in str(caught.value)


def test_required_key_set_to_null_names_it_without_a_pointless_suggestion(in_repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.target") as caught:
        compose(["data.target=null"])
    # the key exists, so suggesting the very same name is noise
    assert "did you mean 'target'" not in str(caught.value)


def test_unknown_group_option_names_it_and_lists_the_options(in_repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"data/nope") as caught:
        compose(["data=nope"])
    for option in DATA_OPTIONS:
        assert option in str(caught.value)


def test_unknown_experiment_names_it_and_lists_the_experiments(in_repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"experiment/nope") as caught:
        compose(["+experiment=nope"])
    for name in EXPERIMENTS:
        assert name in str(caught.value)


def test_misspelled_key_in_a_data_file_names_the_key_and_the_file(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "conf" / "data" / "typo.yaml").write_text(
        "source: csv\npath: data/raw/penguins.csv\ntarget: species\ntagret: species\n"
    )
    monkeypatch.chdir(project)
    with pytest.raises(ConfigError, match=r"tagret") as caught:
        compose(["data=typo"])
    message = str(caught.value)
    assert "data/typo" in message
    assert "did you mean 'data.target'" in message


def test_wrong_type_in_a_data_file_names_the_key_and_the_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "conf" / "data" / "typo.yaml").write_text(
        "source: csv\npath: data/raw/penguins.csv\ntarget: species\nsplit:\n  test_size: a_fifth\n"
    )
    monkeypatch.chdir(project)
    with pytest.raises(ConfigError, match=r"data\.split\.test_size") as caught:
        compose(["data=typo"])
    assert "data/typo" in str(caught.value)
    assert "a_fifth" in str(caught.value)


def test_broken_yaml_in_a_data_file_is_a_config_error_naming_the_file(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "conf" / "data" / "broken.yaml").write_text(
        "source: csv\npath: [data/raw/penguins.csv\ntarget: species\n"
    )
    monkeypatch.chdir(project)
    with pytest.raises(ConfigError, match=r"broken"):
        compose(["data=broken"])


def test_compose_outside_a_project_says_where_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"conf/config\.yaml not found.*project root"):
        compose([])


# --- cross-field checks ------------------------------------------------------------------------


@pytest.mark.parametrize("n_trials", [0, -3])
def test_n_trials_must_be_positive(in_repo: Path, n_trials: int) -> None:
    with pytest.raises(ConfigError, match=rf"search\.n_trials: must be >= 1, got {n_trials}"):
        typed(f"search.n_trials={n_trials}")


def test_a_budget_is_required(in_repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"search: give a budget.*n_trials.*timeout"):
        typed("search.n_trials=null", "search.timeout=null")
    config = typed("search.n_trials=null", "search.timeout=30")  # a timeout alone is a budget
    assert config.search.n_trials is None and config.search.timeout == 30


def test_timeout_must_be_positive(in_repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"search\.timeout: must be > 0"):
        typed("search.timeout=0")


@pytest.mark.parametrize(
    ("override", "key", "valid"),
    [
        ("search.engine=grid", "search.engine", [*ENGINES.names(), "auto"]),
        ("data.source=xlsx", "data.source", SOURCES.names()),
        ("search.sampler=grid", "search.sampler", SAMPLERS.names()),
        ("deploy.targets=[kubernetes]", "deploy.targets", TARGETS.names()),
        ("data.split.strategy=kfold", "data.split.strategy", ["random", "stratified", "time", "group"]),
        ("data.task=ranking", "data.task", ["auto", "binary", "multiclass", "regression"]),
    ],
)
def test_unknown_name_lists_the_valid_names(in_repo: Path, override: str, key: str, valid: list[str]) -> None:
    value = override.split("=", 1)[1].strip("[]")
    with pytest.raises(ConfigError, match=rf"{key}: unknown value '{value}'") as caught:
        typed(override)
    assert valid, key
    assert f"choose one of: {', '.join(sorted(valid))}" in str(caught.value)


def test_close_misspelling_of_a_name_gets_a_suggestion(in_repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.source: unknown value 'sqll' \(did you mean 'sql'\?\)"):
        typed("data.source=sqll")


def test_unknown_metric_gets_a_suggestion(in_repo: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"search\.metric: 'roc_acu' is not a known scorer \(did you mean 'roc_auc'\?\)"
    ):
        typed("search.metric=roc_acu")


def test_csv_source_needs_a_path(in_repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.path: required when data\.source=csv"):
        typed("data.source=csv")


def test_sql_source_needs_url_and_query(in_repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"2 config problems") as caught:
        typed("data.source=sql")
    assert "data.url: required when data.source=sql" in str(caught.value)
    assert "data.query: required when data.source=sql" in str(caught.value)


@pytest.mark.parametrize(("test_size", "valid_size"), [(0.5, 0.5), (0.6, 0.5), (0.9, 0.3)])
def test_split_sizes_must_leave_rows_for_training(in_repo: Path, test_size: float, valid_size: float) -> None:
    with pytest.raises(ConfigError, match=r"data\.split: test_size \+ valid_size must be < 1"):
        typed(f"data.split.test_size={test_size}", f"data.split.valid_size={valid_size}")


@pytest.mark.parametrize("size", [0, 1, 1.5, -0.1])
def test_split_size_must_be_a_share(in_repo: Path, size: float) -> None:
    with pytest.raises(
        ConfigError, match=rf"data\.split\.test_size: must be in \(0, 1\) \(a share of rows\), got {size}"
    ):
        typed(f"data.split.test_size={size}")


def test_time_split_needs_a_time_column(in_repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.split\.time_column: required when data\.split\.strategy=time"):
        typed("data.split.strategy=time")
    assert typed("data.split.strategy=time", "data.split.time_column=when").data.split.time_column == "when"


def test_group_split_needs_a_group_column(in_repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.split\.group_column: required when data\.split\.strategy=group"):
        typed("data.split.strategy=group")


def test_run_name_must_be_a_plain_folder_name(in_repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"run\.name: '\.\./escape' must be a plain name"):
        typed("run.name=../escape")


def test_every_problem_is_reported_in_one_message(in_repo: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        typed(
            "search.n_trials=0",
            "search.sampler=grid",
            "deploy.targets=[kubernetes]",
            "data.split.strategy=time",
            "search.space.linear.alpha.low=1000",
        )
    message = str(caught.value)
    assert message.startswith("5 config problems: ")
    for part in (
        "search.n_trials",
        "search.sampler",
        "deploy.targets",
        "data.split.time_column",
        "search.space.linear.alpha",
    ):
        assert part in message
    assert "\n" not in message


# --- the search space --------------------------------------------------------------------------


def parse(raw: dict) -> tuple[dict, list[str]]:
    problems: list[str] = []
    return parse_space(raw, problems), problems


def test_the_default_space_parses_cleanly(in_repo: Path) -> None:
    space, problems = parse(typed().search.space)
    assert problems == []
    assert set(space) <= set(FAMILIES.names()) and space
    assert space["lightgbm"]["learning_rate"] == optuna.distributions.FloatDistribution(0.01, 0.3, log=True)


def test_unknown_family_is_named_with_a_suggestion_and_the_families() -> None:
    _, problems = parse({"lightgmb": {"n_estimators": 100}})
    assert len(problems) == 1
    assert "'lightgmb'" in problems[0] and "did you mean 'lightgbm'" in problems[0]
    assert ", ".join(FAMILIES.names()) in problems[0]


def test_unknown_parameter_of_a_family_is_named_with_a_suggestion() -> None:
    _, problems = parse({"lightgbm": {"n_estimator": {"type": "int", "low": 10, "high": 20}}})
    assert len(problems) == 1
    assert problems[0].startswith("search.space.lightgbm.n_estimator:")
    assert "did you mean 'n_estimators'" in problems[0]


def test_unknown_spec_key_is_named_with_a_suggestion() -> None:
    _, problems = parse({"linear": {"alpha": {"type": "float", "lo": 0.1, "high": 1.0}}})
    assert len(problems) == 1 and "unknown key 'lo'" in problems[0] and "did you mean 'low'" in problems[0]


def test_unknown_parameter_type_lists_the_types() -> None:
    _, problems = parse({"linear": {"alpha": {"type": "loguniform", "low": 0.1, "high": 1.0}}})
    assert len(problems) == 1 and "search.space.linear.alpha.type: unknown value 'loguniform'" in problems[0]
    assert "categorical, float, int" in problems[0]


def test_low_above_high_is_a_problem() -> None:
    _, problems = parse({"linear": {"alpha": {"type": "float", "low": 10.0, "high": 1.0}}})
    assert problems == ["search.space.linear.alpha: low <= high must hold, but got low=10.0, high=1.0; swap them"]


@pytest.mark.parametrize("low", [0, -1.0])
def test_log_scale_needs_a_positive_low(low: float) -> None:
    _, problems = parse({"linear": {"alpha": {"type": "float", "low": low, "high": 1.0, "log": True}}})
    assert len(problems) == 1 and "log=true needs low > 0" in problems[0] and "search.space.linear.alpha" in problems[0]


@pytest.mark.parametrize(("low", "high", "step"), [(1.5, 10, None), (1, 10.5, None), (1, 10, 2.5)])
def test_int_parameter_needs_whole_numbers(low: float, high: float, step: float | None) -> None:
    spec = {"type": "int", "low": low, "high": high, **({"step": step} if step is not None else {})}
    _, problems = parse({"lightgbm": {"num_leaves": spec}})
    assert len(problems) == 1 and "search.space.lightgbm.num_leaves" in problems[0] and "whole-number" in problems[0]


def test_int_parameter_accepts_whole_floats() -> None:
    space, problems = parse({"lightgbm": {"num_leaves": {"type": "int", "low": 8.0, "high": 16.0}}})
    assert problems == [] and space["lightgbm"]["num_leaves"] == optuna.distributions.IntDistribution(8, 16)


def test_number_bounds_must_be_numbers() -> None:
    _, problems = parse({"lightgbm": {"num_leaves": {"type": "int", "low": "eight", "high": 16}}})
    assert problems == ["search.space.lightgbm.num_leaves.low: expected a number, got 'eight'"]


def test_missing_bound_is_a_problem() -> None:
    _, problems = parse({"lightgbm": {"num_leaves": {"type": "int", "low": 8}}})
    assert len(problems) == 1 and "needs both low and high" in problems[0]


@pytest.mark.parametrize("choices", [[], None])
def test_categorical_needs_choices(choices: list | None) -> None:
    _, problems = parse({"lightgbm": {"boosting_type": {"type": "categorical", "choices": choices}}})
    assert (
        len(problems) == 1
        and "search.space.lightgbm.boosting_type.choices" in problems[0]
        and "non-empty" in problems[0]
    )


def test_scalar_is_a_fixed_value_and_specs_suggest_within_bounds() -> None:
    import optuna

    space, problems = parse(
        {
            "lightgbm": {
                "n_estimators": 100,
                "boosting_type": {"type": "categorical", "choices": ["gbdt", "dart"]},
                "num_leaves": {"type": "int", "low": 8, "high": 16, "step": 4},
                "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
            }
        }
    )
    assert problems == []
    specs = space["lightgbm"]
    assert specs["n_estimators"] == Fixed(100)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        drawn = {name: suggest(trial, name, spec) for name, spec in specs.items()}
        study.tell(trial, 0.0)
        assert drawn["n_estimators"] == 100
        assert drawn["boosting_type"] in ("gbdt", "dart")
        assert drawn["num_leaves"] in (8, 12, 16)
        assert 0.01 <= drawn["learning_rate"] <= 0.3
    assert "n_estimators" not in study.trials[0].params  # fixed values are not searched


def test_null_family_is_dropped() -> None:
    space, problems = parse({"lightgbm": {"n_estimators": 50}, "random_forest": None, "linear": None})
    assert problems == [] and list(space) == ["lightgbm"]


def test_null_family_can_be_dropped_from_the_command_line(in_repo: Path) -> None:
    config = typed("search.space.random_forest=null", "search.space.linear=null")
    space, problems = parse(config.search.space)
    assert problems == [] and list(space) == ["lightgbm"]


@pytest.mark.parametrize("raw", [{}, {"lightgbm": None, "linear": None}])
def test_empty_space_is_a_problem(raw: dict) -> None:
    space, problems = parse(raw)
    assert space == {}
    assert problems == ["search.space: no model family to search; add at least one, e.g. lightgbm: {}"]


def test_family_with_no_parameters_uses_the_defaults() -> None:
    space, problems = parse({"extra_trees": {}})
    assert problems == [] and space == {"extra_trees": {}}


def test_every_space_problem_is_collected() -> None:
    _, problems = parse(
        {
            "lightgmb": {},
            "linear": {"alpha": {"type": "float", "low": 5.0, "high": 1.0}},
            "random_forest": {"max_features": {"type": "float", "low": 0.0, "high": 1.0, "log": True}},
        }
    )
    assert len(problems) == 3, problems
    unknown, swapped, log_low = problems  # one problem per family, in the order the space lists them
    assert "'lightgmb'" in unknown and "did you mean 'lightgbm'" in unknown
    assert swapped == "search.space.linear.alpha: low <= high must hold, but got low=5.0, high=1.0; swap them"
    assert log_low.startswith("search.space.random_forest.max_features:") and "log=true needs low > 0" in log_low


# --- secrets: ${oc.env:VAR} --------------------------------------------------------------------

SECRET_URL = "postgresql+psycopg://analyst:s3cret-pw@db.internal:5432/warehouse"


def test_env_reference_is_kept_literal_in_params_and_expanded_at_use(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "conf" / "data" / "warehouse.yaml").write_text(
        "source: sql\nurl: ${oc.env:AUTOMLOPS_TEST_SECRET_URL}\nquery: SELECT * FROM t\ntarget: y\n"
    )
    monkeypatch.setenv("AUTOMLOPS_TEST_SECRET_URL", SECRET_URL)
    monkeypatch.chdir(project)
    cfg = compose(["data=warehouse"])
    assert cfg.data.url == "${oc.env:AUTOMLOPS_TEST_SECRET_URL}"
    to_typed(cfg)
    write_params(cfg)
    text = (project / "params.yaml").read_text()
    assert "${oc.env:AUTOMLOPS_TEST_SECRET_URL}" in text
    assert "s3cret-pw" not in text and "db.internal" not in text
    config = load_params()  # what every stage reads
    assert config.data.url == "${oc.env:AUTOMLOPS_TEST_SECRET_URL}"
    assert expand_env(config.data.url, "data.url") == SECRET_URL


def test_env_reference_given_on_the_command_line_is_kept_literal(
    in_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOMLOPS_TEST_SECRET_URL", SECRET_URL)
    cfg = compose(["data=penguins_sql", "data.url=${oc.env:AUTOMLOPS_TEST_SECRET_URL}"])
    assert cfg.data.url == "${oc.env:AUTOMLOPS_TEST_SECRET_URL}"
    assert "s3cret-pw" not in OmegaConf.to_yaml(cfg)


def test_env_reference_with_a_default(in_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOMLOPS_TEST_UNSET", raising=False)
    cfg = compose(["data=penguins_sql", "data.url=${oc.env:AUTOMLOPS_TEST_UNSET,sqlite:///fallback.db}"])
    assert cfg.data.url == "${oc.env:AUTOMLOPS_TEST_UNSET,sqlite:///fallback.db}"
    assert expand_env(cfg.data.url, "data.url") == "sqlite:///fallback.db"
    monkeypatch.setenv("AUTOMLOPS_TEST_UNSET", "sqlite:///set.db")
    assert expand_env(cfg.data.url, "data.url") == "sqlite:///set.db"


def test_expand_env_fills_references_inside_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMLOPS_TEST_USER", "analyst")
    monkeypatch.setenv("AUTOMLOPS_TEST_PW", "pw")
    value = "postgresql://${oc.env:AUTOMLOPS_TEST_USER}:${oc.env:AUTOMLOPS_TEST_PW}@host/db"
    assert expand_env(value, "data.url") == "postgresql://analyst:pw@host/db"
    assert expand_env("sqlite:///plain.db", "data.url") == "sqlite:///plain.db"


def test_unset_env_variable_is_a_config_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOMLOPS_TEST_NOT_SET", raising=False)
    with pytest.raises(ConfigError, match=r"data\.url: environment variable AUTOMLOPS_TEST_NOT_SET is not set"):
        expand_env("${oc.env:AUTOMLOPS_TEST_NOT_SET}", "data.url")


def test_mask_env_hides_the_password_only() -> None:
    masked = mask_env(SECRET_URL)
    assert "s3cret-pw" not in masked
    assert masked == "postgresql+psycopg://analyst:***@db.internal:5432/warehouse"
    assert mask_env("sqlite:///data/raw/penguins.sqlite") == "sqlite:///data/raw/penguins.sqlite"
    assert mask_env("postgresql://analyst@host/db") == "postgresql://analyst@host/db"
    assert mask_env(f"cannot connect to {SECRET_URL} (timeout)") == (
        "cannot connect to postgresql+psycopg://analyst:***@db.internal:5432/warehouse (timeout)"
    )


@pytest.mark.parametrize("password", ["p@ss:w@rd", "a/b?c#d%e", "plain", "@:/?#%[] "])
def test_a_password_from_the_environment_may_hold_any_character(password: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """${oc.env:VAR} in a URL's user or password part is filled in percent-encoded, and SQLAlchemy (which
    Optuna's storage and MLflow's database stores use too) reads back the very value."""
    from sqlalchemy.engine import make_url

    monkeypatch.setenv("AUTOMLOPS_TEST_USER", "analyst@corp")
    monkeypatch.setenv("AUTOMLOPS_TEST_PW", password)
    written = (
        "postgresql+psycopg://${oc.env:AUTOMLOPS_TEST_USER}:${oc.env:AUTOMLOPS_TEST_PW}@db.internal:5432/warehouse"
    )
    for key in ("data.url", "search.storage", "deploy.mlflow.tracking_uri"):
        url = make_url(connect_url(written, key))
        assert (url.username, url.password, url.host, url.port, url.database) == (
            "analyst@corp",
            password,
            "db.internal",
            5432,
            "warehouse",
        )
    assert mask_env(written) == written  # references are no secrets
    assert connect_url("postgresql://h/${oc.env:AUTOMLOPS_TEST_PW}", "data.url").endswith(
        password
    )  # elsewhere: as it is


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://analyst:p@ss:w@rd@db.internal/warehouse",
        "postgresql://analyst:ab/cd@db.internal/warehouse",
        "mysql://analyst:x@y@db.internal:3306/warehouse",
    ],
)
@pytest.mark.parametrize("key", ["data.url", "search.storage", "deploy.mlflow.tracking_uri"])
def test_a_url_whose_parts_cannot_be_told_apart_is_refused_quoting_none_of_it(
    in_repo: Path, url: str, key: str
) -> None:
    overrides = ["data=penguins_sql"] if key == "data.url" else []
    with pytest.raises(ConfigError) as caught:
        typed(*overrides, f"{key}={url}")
    message = str(caught.value)
    assert message.startswith(f"{key}: cannot tell the URL's user, password, host and port apart") and "%40" in message
    assert "analyst" not in message and "db.internal" not in message, message
    with pytest.raises(ConfigError) as caught:
        connect_url(url, key)
    assert "analyst" not in str(caught.value) and "db.internal" not in str(caught.value)


def test_mask_env_hides_a_password_that_holds_at_signs() -> None:
    assert mask_env("postgresql://analyst:p@ss:w@rd@db.internal/w") == "postgresql://analyst:***@db.internal/w"
    assert mask_env("postgresql://analyst@corp:p@ss@db/w (refused)") == "postgresql://analyst@corp:***@db/w (refused)"
    assert mask_env("postgresql://${oc.env:U}:${oc.env:P}@db/w") == "postgresql://${oc.env:U}:${oc.env:P}@db/w"
    assert mask_env("sqlite:////data/x@y.db") == "sqlite:////data/x@y.db"


# --- the stale-params guard (real CLI) ---------------------------------------------------------


def test_check_conf_refuses_a_params_yaml_older_than_conf(project: Path) -> None:
    composed = cli("compose", cwd=project)
    assert composed.returncode == 0, composed.stderr
    fresh = cli("stage", "check_conf", cwd=project)
    assert fresh.returncode == 0, fresh.stderr
    assert (project / ".automlops" / "conf.ok").is_file()

    search = project / "conf" / "search" / "optuna.yaml"
    search.write_text(search.read_text().replace("n_trials: 20", "n_trials: 7"))
    stale = cli("stage", "check_conf", cwd=project)
    assert stale.returncode != 0
    lines = [line for line in stale.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stale.stderr
    assert lines[0].startswith("error: params.yaml is stale") and "automlops compose" in lines[0]
    assert "Traceback" not in stale.stderr

    recomposed = cli("compose", cwd=project)
    assert recomposed.returncode == 0, recomposed.stderr
    assert yaml.safe_load((project / "params.yaml").read_text())["search"]["n_trials"] == 7
    again = cli("stage", "check_conf", cwd=project)
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("serve.max_rows=0", "serve.max_rows: must be >= 1, got 0"),
        ("serve.unknown_categories=drop", "serve.unknown_categories: unknown value 'drop'"),
        ("predict.chunk_rows=0", "predict.chunk_rows: must be >= 1"),
    ],
)
def test_serve_and_predict_sections_are_checked_when_composed(in_repo: Path, override: str, named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        typed(override)
