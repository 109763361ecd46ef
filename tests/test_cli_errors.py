"""The command line's contract on bad input: a non-zero exit, one `error:` line that names the key
or value, no traceback (unless --verbose), and nothing already on disk touched."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import champion, cli, cli_in_process, new_project, snapshot

GUARDED = ("models", "data/prepared", "params.yaml", "artifacts", "metrics")

BAD_INPUTS = [
    pytest.param(["data.target=__nope__"], ["data.target", "__nope__"], id="unknown-target"),
    pytest.param(["search.engine=__nope__"], ["search.engine", "__nope__", "optuna"], id="unknown-engine"),
    pytest.param(["+experiment=__nope__"], ["experiment", "__nope__"], id="unknown-experiment"),
    pytest.param(["search.n_trials=abc"], ["search.n_trials", "abc"], id="wrong-type"),
    pytest.param(["serch.n_trials=3"], ["serch", "did you mean 'search.n_trials'"], id="misspelled-key"),
    pytest.param(["search.n_trials=-5"], ["search.n_trials", "-5"], id="negative-trials"),
    pytest.param(["data.source=csv", "data.path=missing.csv"], ["data.path", "missing.csv"], id="missing-csv"),
    pytest.param(
        ["search.space.linear.alpha.low=1000"], ["search.space.linear.alpha", "low=1000"], id="low-above-high"
    ),
]


def assert_one_error_line(stderr: str, *named: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    assert lines[0].startswith("error: "), lines[0]
    for part in named:
        assert part in lines[0], f"{part!r} not in: {lines[0]}"
    return lines[0]


@pytest.fixture(scope="module")
def prepared_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose params.yaml is freshly composed and whose data/prepared exists, shared by the
    bad-input cases below: each one must leave it exactly as it found it."""
    root = new_project(tmp_path_factory.mktemp("cli_errors") / "project")
    for args in (("compose",), ("stage", "prepare")):
        result = cli(*args, cwd=root)
        assert result.returncode == 0, result.stderr
    assert (root / "data" / "prepared" / "meta.json").is_file()
    return root


@pytest.mark.parametrize(("overrides", "named"), BAD_INPUTS)
def test_bad_input_is_one_error_line_and_touches_nothing(
    prepared_project: Path, overrides: list[str], named: list[str]
) -> None:
    before = snapshot(prepared_project, GUARDED)
    result = cli_in_process("run", *overrides, cwd=prepared_project)
    assert result.returncode != 0
    assert_one_error_line(result.stderr, *named)
    assert "Traceback" not in result.stdout
    assert snapshot(prepared_project, GUARDED) == before


@pytest.mark.parametrize(("overrides", "named"), [BAD_INPUTS[1], BAD_INPUTS[4]])
def test_compose_refuses_bad_input_and_keeps_params_yaml(
    prepared_project: Path, overrides: list[str], named: list[str]
) -> None:
    before = snapshot(prepared_project, GUARDED)
    result = cli("compose", *overrides, cwd=prepared_project)
    assert result.returncode != 0
    assert_one_error_line(result.stderr, *named)
    assert snapshot(prepared_project, GUARDED) == before


def test_config_errors_and_data_errors_exit_with_different_codes(prepared_project: Path) -> None:
    config_error = cli("run", "search.n_trials=-5", cwd=prepared_project)
    data_error = cli("run", "data.source=csv", "data.path=missing.csv", cwd=prepared_project)
    assert config_error.returncode == 2, config_error.stderr
    assert data_error.returncode == 1, data_error.stderr
    config_line = assert_one_error_line(config_error.stderr, "search.n_trials", "-5")
    data_line = assert_one_error_line(data_error.stderr, "data.path", "missing.csv")
    assert "must be >= 1" in config_line and "data.path" not in config_line
    assert "search.n_trials" not in data_line


@pytest.mark.parametrize("position", ["before", "after"])
def test_verbose_shows_the_traceback(prepared_project: Path, position: str) -> None:
    args = (
        ["--verbose", "run", "search.n_trials=-5"]
        if position == "before"
        else ["run", "--verbose", "search.n_trials=-5"]
    )
    result = cli(*args, cwd=prepared_project)
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConfigError: search.n_trials: must be >= 1, got -5" in result.stderr


@pytest.mark.parametrize("spelling", ["", "+", "++"])
@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("search.n_trialz", "search.n_trials"), ("zzz", None), ("serch.n_trials", "search.n_trials")],
)
def test_an_unknown_key_is_refused_however_it_is_spelled(
    prepared_project: Path, spelling: str, key: str, suggestion: str | None
) -> None:
    """Hydra's + and ++ add a key the schema lacks, and compose wrote it to params.yaml."""
    before = snapshot(prepared_project, GUARDED)
    result = cli_in_process("compose", f"{spelling}{key}=50", cwd=prepared_project)
    assert result.returncode == 2, result.stderr
    line = assert_one_error_line(result.stderr, f"config key '{key}'")
    if suggestion:
        assert f"(did you mean '{suggestion}'?)" in line, line  # the whole key, ready to use
    assert f"+{key}" not in line and f"+{suggestion}" not in line, f"the message suggests adding the key: {line}"
    assert snapshot(prepared_project, GUARDED) == before


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["run", "search.n_trials=-5"], 2),  # a config error
        (["run", "data.source=csv", "data.path=missing.csv"], 1),  # a data error
        (["models", "show", "__nope__"], 1),  # a registry error
    ],
)
def test_verbose_adds_the_traceback_and_keeps_the_exit_code(prepared_project: Path, args: list[str], code: int) -> None:
    """Exit codes are a contract: --verbose raised the error out of main, and Python exits 1 on that."""
    quiet, verbose = cli(*args, cwd=prepared_project), cli("--verbose", *args, cwd=prepared_project)
    assert quiet.returncode == verbose.returncode == code, (quiet.stderr[-500:], verbose.stderr[-2000:])
    assert "Traceback (most recent call last)" in verbose.stderr and "Traceback" not in quiet.stderr
    assert verbose.stderr.strip().splitlines()[-1] == quiet.stderr.strip().splitlines()[-1]  # the same error line, last


@pytest.mark.parametrize("verbose", [False, True])
def test_an_internal_error_exits_3_with_or_without_verbose_and_masks_passwords(
    verbose: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from automlops import cli as command_line

    def bug(_: object) -> int:
        raise RuntimeError("cannot reach postgresql://analyst:p@ss:w@rd@db.internal/warehouse")

    monkeypatch.setattr(command_line, "_models", bug)
    assert command_line.main([*(["--verbose"] if verbose else []), "models", "list"]) == 3
    stderr = capsys.readouterr().err
    assert ("Traceback (most recent call last)" in stderr) == verbose
    assert (
        stderr.strip()
        .splitlines()[-1]
        .startswith("internal error: RuntimeError: cannot reach postgresql://analyst:***@db.internal")
    )
    assert not [fragment for fragment in ("p@ss", "ss:w", "w@rd") if fragment in stderr], stderr


PASSWORD = "p@ss:w@rd"  # no fragment of it may be printed: 'ss:w', 'w@rd', 'rd@db' ...
FRAGMENTS = ("p@ss", "ss:w", "w@rd", "rd@")


@pytest.mark.parametrize("verbose", [[], ["--verbose"]])
@pytest.mark.parametrize(
    "override",
    [
        f"data.url=postgresql+psycopg://analyst:{PASSWORD}@127.0.0.1:5432/test",  # in clear: refused by the config check
        "data.url=${oc.env:AUTOMLOPS_TEST_DB}",  # the whole URL from the environment: refused where it is used
        "search.storage=${oc.env:AUTOMLOPS_TEST_DB}",
    ],
)
def test_a_password_holding_at_or_colon_is_a_clear_error_quoting_no_fragment(
    prepared_project: Path, override: str, verbose: list[str]
) -> None:
    """SQLAlchemy read 'ss' as the host and 'w@rd@127.0.0.1' as the port, and the CLI printed its
    ValueError: `internal error: ValueError: invalid literal for int() with base 10: 'w@rd@127.0.0.1'`."""
    data = ["data=penguins_sql"] if override.startswith("data.") else []
    result = cli(
        *verbose,
        "run",
        *data,
        override,
        "search.n_trials=2",
        cwd=prepared_project,
        env={"AUTOMLOPS_TEST_DB": f"postgresql+psycopg://analyst:{PASSWORD}@127.0.0.1:5432/test"},
    )
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"error: {override.split('=')[0]}: cannot tell the URL's user, password, host and port apart"
    ), last
    assert "%40" in last and "${oc.env:VAR}" in last
    leaked = [fragment for fragment in FRAGMENTS if fragment in result.stderr + result.stdout]
    assert not leaked, f"{leaked} printed:\n{result.stderr[-3000:]}"


def test_outside_a_project_the_error_says_where_to_run(tmp_path: Path) -> None:
    result = cli("run", cwd=tmp_path)
    assert result.returncode != 0
    assert_one_error_line(result.stderr, "conf/config.yaml not found", "project root")


@pytest.mark.slow  # runs the pipeline up to a failed search
def test_a_search_where_every_trial_fails_is_reported_on_one_line(prepared_project: Path) -> None:
    before = snapshot(prepared_project, ("models", "params.yaml", "artifacts"))
    result = cli(
        "run",
        "search.n_trials=2",
        "search.space.random_forest=null",
        "search.space.linear=null",
        "search.space.lightgbm.num_leaves=1",
        cwd=prepared_project,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "all 2 trial(s) failed" in errors[0] and "num_leaves" in errors[0]
    after_error = result.stderr[re.search(r"^error: ", result.stderr, re.M).start() :].strip()
    assert "\n" not in after_error, f"the error message spans several lines:\n{after_error}"
    assert snapshot(prepared_project, ("models", "params.yaml", "artifacts")) == before


@pytest.mark.slow
def test_a_failing_run_leaves_the_packaged_bundle_byte_identical(project: Path) -> None:
    good = cli("run", "search.n_trials=1", cwd=project)  # one trial: the test needs a packaged bundle, not a search
    assert good.returncode == 0, good.stderr[-3000:]
    bundles = [p for p in (project / "models").iterdir() if p.is_dir()]
    assert len(bundles) == 1 and (champion(project, bundles[0].name) / "manifest.json").is_file()
    name = bundles[0].name
    guarded = ("models", "params.yaml")
    before = snapshot(project, guarded)

    failing = [
        ["data.target=__nope__"],  # fails while preparing
        ["data.source=csv", "data.path=missing.csv"],
        ["search.n_trials=-5"],  # fails before any stage
        ["data=diabetes", "search.metric=roc_auc", "search.n_trials=2"],  # fails in the search, after prepare
        [
            "search.n_trials=2",
            "search.space.random_forest=null",
            "search.space.linear=null",
            "search.space.lightgbm.num_leaves=1",
        ],  # every trial fails
    ]
    for overrides in failing:
        result = cli("run", f"run.name={name}", *overrides, cwd=project)
        assert result.returncode != 0, overrides
        assert "Traceback" not in result.stderr, result.stderr
        assert snapshot(project, guarded) == before, f"{overrides} changed the bundle or params.yaml"
    assert not [p.name for p in (project / "models").iterdir() if p.name.startswith(".")], "staging folders left behind"


def test_the_command_keeps_its_exit_code_and_still_runs_exit_handlers(tmp_path: Path) -> None:
    """`entry_point` leaves with os._exit (native thread pools can abort a normal teardown), so it
    must run what teardown would have run: exit handlers and stream flushes, with the real code."""
    script = (
        "import atexit, sys\n"
        "from automlops import cli\n"
        "atexit.register(lambda: print('handlers ran', flush=True))\n"
        "sys.stdout.write('buffered, not flushed')\n"
        "sys.argv = ['automlops', 'models', 'show', '__nope__']\n"
        "cli.entry_point()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr  # RegistryError's code
    assert "buffered, not flushed" in result.stdout and "handlers ran" in result.stdout
    assert_one_error_line(result.stderr, "__nope__")
