"""The command line; the only module that reads argv or configures logging.

    automlops run [+experiment=NAME] [key=value ...] [-m]   compose conf/, write params.yaml, run every stage
    automlops compose [overrides ...]                       only write params.yaml (then `dvc repro`)
    automlops stage NAME                                    one stage from params.yaml (what dvc.yaml calls)
    automlops worker [overrides ...]                        join a shared Optuna study and run trials
    automlops predict --model MODEL --input FILE --output FILE [--keep COL ...] [predict.KEY=VALUE ...]
    automlops serve --model MODEL [--host 127.0.0.1] [--port 8080]
    automlops models list|show|promote|rollback|delete|prune ...   the local registry (models/<name>/)
    automlops keys generate DIR | keys sign MODEL           Ed25519 keys that sign bundles (deploy.signing)
    automlops monitor --model MODEL --data FILE|DIR [--labels FILE] [monitor.KEY=VALUE ...]
                                                            drift of a batch against the training snapshot

MODEL is a bundle folder, models/<name> (its champion) or models/<name>@<alias or version>.
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from automlops.children import install_handlers, stop_descendants, stop_signal, stopped
from automlops.errors import AutomlopsError, ConfigError, RegistryError
from automlops.stages import STAGE_NAMES
from automlops.urls import mask_secrets

if TYPE_CHECKING:
    from automlops.config.schema import Config
    from automlops.records import DeployRecord, Manifest

log = logging.getLogger("automlops")
MODEL_HELP = "a bundle folder, models/<name> (its champion) or models/<name>@<alias|version>"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    verbose = args.verbose or os.environ.get("HYDRA_FULL_ERROR") == "1"
    level = logging.DEBUG if verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    try:
        return int(args.handler(args) or 0)
    except (
        AutomlopsError
    ) as error:  # with --verbose, the traceback too; the exit code is the same either way (a contract)
        if stop_signal(error) is not None:
            return _stopped(error, args.command)
        if verbose:
            _print_traceback()
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as interrupt:  # Ctrl-C, SIGTERM or SIGHUP (automlops.children.Terminated)
        return _stopped(interrupt, args.command)
    except Exception as error:  # a bug, not a user mistake: still no traceback unless asked
        if stop_signal(error) is not None:
            return _stopped(error, args.command)
        if verbose:
            _print_traceback()
        text = mask_secrets(str(error).splitlines()[0]) if str(error) else ""
        print(
            f"internal error: {type(error).__name__}: {text} "
            f"({'please report it with the traceback above' if verbose else 'rerun with --verbose for the traceback, and please report it'})",
            file=sys.stderr,
        )
        return 3


def _print_traceback() -> None:
    """The current exception's traceback on stderr, with any password a URL spells out masked."""
    import traceback

    print(mask_secrets(traceback.format_exc()).rstrip("\n"), file=sys.stderr)


def _stopped(error: BaseException, command: str) -> int:
    """A signal stopped the command, even when a library's cleanup raised something else meanwhile."""
    signum = stop_signal(error) or signal.SIGINT
    how = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    resume = (
        "; run the same command again to resume (finished search trials are kept)"
        if command in ("run", "stage", "worker")
        else ""
    )
    print(how + resume, file=sys.stderr)
    return 128 + signum  # 130, 143 (SIGTERM), 129 (SIGHUP): what a shell reports for a signal


def entry_point() -> None:
    """The `automlops` command: `main`, then an exit that skips native teardown.

    Arrow's thread pool (and other native pools) can abort the process while C++ static
    objects are destroyed after Python has finished (apache/arrow#34314): a run that printed
    its result would then exit with SIGABRT instead of its own code. By that point every
    byte is written, so join our threads, run the exit handlers, flush and leave directly.
    SIGTERM and SIGHUP stop the command as Ctrl-C does (automlops.children), so its cleanup runs.
    """
    install_handlers()
    code = main()
    stop_descendants()  # after a signal only: what a library started on its own goes too
    # after a signal, a thread may never end (Optuna's heartbeat thread, when the signal lands before
    # it is told to stop): wait a little, then leave anyway
    deadline = time.monotonic() + 3 if stopped() else None
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    atexit._run_exitfuncs()  # what interpreter shutdown would run: logging, temp dirs, workers
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed early (e.g. piped into `head`)
            pass
    os._exit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="automlops", description="Declarative AutoML pipelines from conf/ to a served model."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs and full tracebacks")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="warnings and errors only (no progress, no per-trial lines)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="compose conf/ with overrides, write params.yaml and run every stage")
    run.add_argument("overrides", nargs="*", help="Hydra overrides: +experiment=NAME, search.n_trials=40, data=my_csv")
    run.add_argument("-m", "--multirun", action="store_true", help="sweep: one run per combination (a,b,c values)")
    run.add_argument("--cfg", action="store_true", help="print the composed config and stop")
    run.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    run.set_defaults(handler=_run)

    compose = commands.add_parser("compose", help="compose conf/ with overrides into params.yaml (for dvc repro)")
    compose.add_argument("overrides", nargs="*")
    compose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    compose.set_defaults(handler=_compose)

    stage = commands.add_parser("stage", help="run one stage from params.yaml (what dvc.yaml calls)")
    stage.add_argument("name", choices=STAGE_NAMES)
    stage.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    stage.set_defaults(handler=_stage)

    worker = commands.add_parser(
        "worker", help="join the search's Optuna study (search.storage) and run trials until its budget is spent"
    )
    worker.add_argument("overrides", nargs="*", help="the same overrides as the run being helped")
    worker.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    worker.set_defaults(handler=_worker)

    predict = commands.add_parser("predict", help="score a CSV, Parquet or JSON file with a bundle")
    predict.add_argument("--model", required=True, help=MODEL_HELP)
    predict.add_argument(
        "--input",
        required=True,
        type=Path,
        help=".csv, .parquet or .json (list of records) with the model's input columns",
    )
    predict.add_argument("--output", required=True, type=Path, help=".csv, .parquet or .json to write predictions to")
    predict.add_argument(
        "--keep",
        nargs="+",
        default=[],
        metavar="COL",
        help="input columns to copy to the output (ids, labels), after predict.id_columns",
    )
    predict.add_argument(
        "overrides",
        nargs="*",
        help="predict.* and deploy.signing.* keys, e.g. predict.chunk_rows=20000 'predict.id_columns=[id]'",
    )
    predict.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    predict.set_defaults(handler=_predict)

    serve = commands.add_parser(
        "serve", help="serve a model over HTTP (/predict, /invocations, /health, /ready, /metadata, /metrics)"
    )
    serve.add_argument("--model", required=True, help=MODEL_HELP + "; an alias is followed (hot reload)")
    serve.add_argument("--host", help="address to bind (default serve.host: 127.0.0.1, loopback only)")
    serve.add_argument("--port", type=int, help="default serve.port: 8080")
    serve.add_argument("--workers", type=int, help="server processes (default serve.workers: 1)")
    serve.add_argument(
        "overrides",
        nargs="*",
        help="serve.* and deploy.signing.* keys, e.g. serve.max_rows=1000 serve.token_env=API_TOKEN",
    )
    serve.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    serve.set_defaults(handler=_serve)

    monitor = commands.add_parser(
        "monitor", help="drift of a batch (file or prediction-log folder) against the model's training snapshot"
    )
    monitor.add_argument("--model", required=True, help=MODEL_HELP)
    monitor.add_argument(
        "--data",
        required=True,
        type=Path,
        help=".csv, .parquet, .json or prediction-log .jsonl file, or a folder of them",
    )
    monitor.add_argument(
        "--labels",
        type=Path,
        help="late labels (monitor.id_column + the target) joined to the batch: performance drift",
    )
    monitor.add_argument(
        "--out", help="folder for monitor.json and monitor.html (default monitor.out: metrics/monitor)"
    )
    monitor.add_argument(
        "overrides",
        nargs="*",
        help="monitor.* and deploy.signing.* keys, e.g. monitor.drift_share=0.3 monitor.method=psi",
    )
    monitor.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    monitor.set_defaults(handler=_monitor)

    models = commands.add_parser("models", help="the local model registry: versions and aliases under deploy.dir")
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="registered models, or one model's versions with metrics and aliases")
    listing.add_argument("name", nargs="?", help="a model name or its folder (models/<name>); none: every model")
    show = actions.add_parser("show", help="one version's manifest summary (read without loading the model)")
    show.add_argument("name", help="models/<name>[@alias|@version] or a name[@alias|@version]")
    promote = actions.add_parser("promote", help="point an alias at a version (the model is verified first)")
    promote.add_argument("name")
    promote.add_argument("version", type=int)
    promote.add_argument(
        "overrides", nargs="*", help="deploy.signing.* keys: the version must be signed by deploy.signing.public_keys"
    )
    rollback = actions.add_parser("rollback", help="point an alias back at the version it held before")
    rollback.add_argument("name")
    delete = actions.add_parser("delete", help="remove one version (never an alias's target); its number is not reused")
    delete.add_argument("name")
    delete.add_argument("version", type=int)
    prune = actions.add_parser("prune", help="remove all but the newest versions; alias targets are always kept")
    prune.add_argument("name")
    prune.add_argument("--keep", type=int, required=True, metavar="N", help="how many of the newest versions to keep")
    for action in (listing, show, promote, rollback, delete, prune):
        action.add_argument("--dir", default="models", help="the registry root, deploy.dir (default: models)")
        action.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    for action in (promote, rollback):
        action.add_argument("--alias", default="champion", help="default: champion")
    models.set_defaults(handler=_models)

    keys = commands.add_parser(
        "keys", help="Ed25519 keys that sign bundles and verify them before loading (deploy.signing)"
    )
    key_actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    generate = key_actions.add_parser(
        "generate", help="write a new key pair to DIR (private 0600) and print the config lines"
    )
    generate.add_argument("dir", type=Path)
    sign = key_actions.add_parser(
        "sign", help="sign a bundle you trust (e.g. one published before signing) with deploy.signing's private key"
    )
    sign.add_argument("model", help=MODEL_HELP)
    sign.add_argument(
        "overrides", nargs="*", help="deploy.signing.* keys, e.g. deploy.signing.private_key=keys/signing.key"
    )
    for action in (generate, sign):
        action.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    keys.set_defaults(handler=_keys)
    return parser


def _run(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from automlops.checks import to_typed
    from automlops.config.compose import compose, write_params
    from automlops.pipeline import run_all

    jobs = sweep(args.overrides) if args.multirun else [args.overrides]
    composed = [(job, compose(job)) for job in jobs]
    configs = [to_typed(cfg) for _, cfg in composed]  # every job is checked before any starts
    if args.cfg:
        for _, cfg in composed:
            print(OmegaConf.to_yaml(cfg))
        return 0
    if not args.multirun:
        record = run_all(configs[0])
        write_params(composed[0][1])  # after success only: `dvc repro` then reproduces this very run
        _print_next_steps(record, configs[0])
        return 0
    return _run_jobs(jobs, configs)


def _run_jobs(jobs: list[list[str]], configs: list[Config]) -> int:
    """A sweep runs every job, whatever the others did; a table of outcomes ends it, and the exit
    code is the first failed job's (0 when all succeeded). Ctrl-C or a signal stops the whole sweep."""
    from automlops.pipeline import run_all

    outcomes: list[tuple[str, int, str]] = []
    varying = [i for i in range(len(jobs[0])) if len({job[i] for job in jobs}) > 1]  # the swept overrides name a job
    try:
        for job, config in zip(jobs, configs):
            shown = " ".join(job[i] for i in varying) or " ".join(job) or "(defaults)"
            log.info("=== run %s", shown)
            try:
                record = run_all(config)
            except AutomlopsError as error:
                if stop_signal(error) is not None:
                    raise
                print(f"error: {error}", file=sys.stderr)
                outcomes.append((shown, error.exit_code, f"error: {str(error).splitlines()[0]}"))
                continue
            except Exception as error:  # a bug in one job: the others still run
                if stop_signal(error) is not None:
                    raise
                log.debug("job %s failed", shown, exc_info=True)
                first = str(error).splitlines()[0] if str(error) else ""
                print(
                    f"internal error: {type(error).__name__}: {first} (rerun the job with --verbose for the traceback)",
                    file=sys.stderr,
                )
                outcomes.append((shown, 3, f"internal error: {type(error).__name__}: {first}"))
                continue
            _print_next_steps(record, config)
            published = f"{config.run.name} v{record.version} is the {record.alias}" if record.published else None
            outcomes.append((shown, 0, published or f"not published ({record.reason})"))
    finally:
        _print_sweep(outcomes, len(jobs))
    return next((code for _, code, _ in outcomes if code), 0)


def _print_sweep(outcomes: list[tuple[str, int, str]], total: int) -> None:
    failed = sum(code != 0 for _, code, _ in outcomes)
    width = max([len("job"), *(len(job) for job, _, _ in outcomes)])
    lines = [f"\nsweep: {len(outcomes)} of {total} job(s) ran, {failed} failed", f"  {'job':{width}}  exit  outcome"]
    lines += [f"  {job:{width}}  {code:>4}  {outcome}" for job, code, outcome in outcomes]
    print("\n".join(lines))


def sweep(overrides: list[str]) -> list[list[str]]:
    """Expand Hydra sweep syntax (key=a,b  key=range(1,3)  key=glob(*)) into one override list per job."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as error:
        raise ConfigError(f"override: {str(error).splitlines()[0]}; see Hydra's override grammar") from error
    choices = []
    for override in parsed:
        if override.is_sweep_override():
            key = override.get_key_element()
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            choices.append([str(override.input_line)])
    return [list(combination) for combination in itertools.product(*choices)]


def _print_next_steps(record: DeployRecord, config: Config) -> None:
    import json

    from automlops.pipeline import CANDIDATE_DIR, TEST_METRICS

    metrics = json.loads(TEST_METRICS.read_text()) if TEST_METRICS.is_file() else {}
    shown = ", ".join(f"{k}={v:.4f}" for k, v in list(metrics.items())[:3])
    if record.unchanged:
        print(f"\nunchanged: {record.reason}  test: {shown}")
        return
    if not record.published:
        print(f"\nnot published ({record.reason}); the candidate is in {CANDIDATE_DIR}/  test: {shown}")
        return
    name, alias, version = config.run.name, record.alias, record.version
    model = f"{config.deploy.dir}/{name}"
    print(f"\nmodel {name} v{version} is the {alias} at {model}/versions/{version}/  test: {shown}")
    print(f"published to: {', '.join(record.targets or {})}")
    print("next:")
    print(
        f"  automlops predict --model {model}@{alias} --input {model}/versions/{version}/input_example.json --output predictions.csv"
    )
    print(f"  automlops serve --model {model}@{alias} --port 8080   # then POST the input example to /predict")
    print(f"  automlops models list {name}")


def _compose(args: argparse.Namespace) -> int:
    from automlops.checks import to_typed
    from automlops.config.compose import PARAMS_FILE, compose, write_params

    cfg = compose(args.overrides)
    to_typed(cfg)
    write_params(cfg)
    print(f"wrote {PARAMS_FILE}; run `dvc repro` to bring the outputs up to date")
    return 0


def _stage(args: argparse.Namespace) -> int:
    from automlops.checks import check_params_fresh, load_params

    if args.name == "check_conf":
        from automlops.io import write_text_atomic
        from automlops.stages import CONF_OK

        check_params_fresh()
        write_text_atomic(
            CONF_OK, "params.yaml matches conf/\n"
        )  # constant: downstream stages rerun only on their own params
        return 0
    from automlops.pipeline import stage_function, workspace_lock

    config = load_params()
    with workspace_lock():
        stage_function(args.name)(config)
    return 0


def _worker(args: argparse.Namespace) -> int:
    """Many processes, on one machine or many, can share one study through a storage such as
    PostgreSQL: each runs trials until the study has search.n_trials; the run that owns the search
    (automlops run or dvc repro) then refits and packages the best."""
    from automlops.checks import to_typed
    from automlops.config.compose import compose
    from automlops.pipeline import STATE_DIR, search_data
    from automlops.search.auto import resolve_auto
    from automlops.search.optuna_engine import FINISHED, plan, run_trials
    from automlops.search.resampling import concrete_validation

    config = resolve_auto(to_typed(compose(args.overrides)), log_choice=True)
    if config.search.engine != "optuna":
        raise ConfigError(
            f"search.engine: workers join Optuna studies; got '{config.search.engine}', use search.engine=optuna"
        )
    if not config.search.storage:
        log.warning(
            "search.storage is the local sqlite file: only processes on this machine can join; use PostgreSQL for many machines"
        )
    data = search_data(config)
    search = concrete_validation(config.search, data, config.run.seed)  # as the run that owns the study decides
    study = run_trials(search, plan(search, data.task, data.positive()), data, config.run.seed, STATE_DIR)
    finished = len([t for t in study.get_trials(deepcopy=False) if t.state.name in FINISHED])
    print(f"study {study.study_name}: {finished} trial(s) finished")
    return 0


def _predict(args: argparse.Namespace) -> int:
    """Score a file in chunks of predict.chunk_rows rows; predict.* comes from conf/ and the overrides
    in a project, from the schema's defaults and the overrides elsewhere (a container with a bundle)."""
    from automlops.bundle import load_bundle
    from automlops.predict import predict_file
    from automlops.runtime_config import runtime_config
    from automlops.signing import trusted_keys

    # `--keep a b predict.chunk_rows=10`: argparse hands trailing overrides to --keep
    overrides = args.overrides + [item for item in args.keep if "=" in item]
    settings, signing = runtime_config("predict", overrides)
    bundle = load_bundle(args.model, keys=trusted_keys(signing))
    keep = [*settings.id_columns, *(item for item in args.keep if "=" not in item)]
    rows = predict_file(bundle, args.input, args.output, keep, settings.chunk_rows, progress=not args.quiet)
    print(f"wrote {rows} prediction(s) to {args.output}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from automlops import model_registry as reg

    if args.action == "list" and not args.name:
        root = Path(args.dir)
        names = sorted(p.name for p in root.iterdir() if (p / reg.VERSIONS).is_dir()) if root.is_dir() else []
        if not names:
            print(f"no registered models under {root}/; `automlops run` registers one")
        for name in names:
            aliases = reg.read_aliases(root / name)["aliases"]
            print(
                f"{name}: {len(reg.list_versions(root / name))} version(s); "
                + (", ".join(f"{a} v{v}" for a, v in sorted(aliases.items())) or "no alias")
            )
        return 0
    base, _, alias = args.name.partition("@")
    registry = Path(base) if (Path(base) / reg.VERSIONS).is_dir() else Path(args.dir) / base
    if not (registry / reg.VERSIONS).is_dir():
        raise RegistryError(
            f"model '{base}': no registry at {registry}/; `automlops models list --dir {args.dir}` shows the models"
        )
    if args.action == "list":
        _print_versions(registry)
    elif args.action == "show":
        from automlops.bundle import read_manifest

        print(_manifest_summary(read_manifest(f"{registry}@{alias}" if alias else registry)))
    elif args.action == "promote":
        from automlops.bundle import verify_bundle
        from automlops.runtime_config import runtime_config
        from automlops.signing import trusted_keys

        keys = trusted_keys(runtime_config(None, args.overrides)[1])
        verify_bundle(reg.resolve(f"{registry}@{args.version}"), keys=keys)  # never point an alias at a modified bundle
        previous = reg.promote(registry, args.version, args.alias)
        print(f"{registry.name}: {args.alias} -> v{args.version}" + (f" (was v{previous})" if previous else ""))
    elif args.action == "rollback":
        version = reg.rollback(registry, args.alias)
        print(f"{registry.name}: {args.alias} rolled back to v{version}")
    elif args.action == "delete":
        reg.delete_version(registry, args.version)
        print(f"{registry.name}: deleted v{args.version}")
    else:
        deleted, kept = reg.prune(registry, args.keep)
        print(
            f"{registry.name}: deleted {', '.join(f'v{v}' for v in deleted) or 'nothing'}; kept the newest {args.keep}"
            + (f" and alias target(s) {', '.join(f'v{v} ({_aliases_of(registry, v)})' for v in kept)}" if kept else "")
        )
    return 0


def _aliases_of(registry: Path, version: int) -> str:
    from automlops import model_registry as reg

    return ", ".join(reg.alias_targets(registry).get(version, []))


def _print_versions(registry: Path) -> None:
    import json

    from automlops import model_registry as reg
    from automlops.evaluate.names import primary_metric

    aliases = reg.read_aliases(registry)["aliases"]
    by_version: dict[int, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(int(version), []).append(alias)
    print(f"{'version':>7}  {'created':25}  {'family':24}  {'test metrics':40}  aliases")
    for version in reg.list_versions(registry):
        manifest_file = reg.version_dir(registry, version) / "manifest.json"
        manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
        test = manifest.get("metrics", {}).get("test", {})
        headline = [primary_metric(manifest["task"]), "accuracy", "r2"] if "task" in manifest else []
        shown = ", ".join(f"{k}={test[k]:.4f}" for k in headline if k in test)
        family = str(manifest.get("model", {}).get("family", "?"))
        print(
            f"{version:>7}  {manifest.get('created_at', '?'):25}  {family[:24]:24}  {shown[:40]:40}  {', '.join(sorted(by_version.get(version, [])))}"
        )


def _manifest_summary(manifest: Manifest) -> str:
    import json

    keys = (
        "name",
        "version",
        "created_at",
        "task",
        "target",
        "classes",
        "positive_class",
        "decision_threshold",
        "metrics",
        "model",
        "blessing",
        "lineage",
    )
    written = manifest.to_dict()
    return json.dumps({k: written[k] for k in keys if k in written}, indent=2, default=str)


def _monitor(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from automlops.monitor.runner import check_drift, monitor
    from automlops.runtime_config import runtime_config
    from automlops.signing import trusted_keys

    cfg, signing = runtime_config("monitor", args.overrides)
    cfg = replace(cfg, out=args.out) if args.out else cfg
    check_drift(
        monitor(args.model, args.data, cfg, args.labels, tuple(args.overrides), keys=trusted_keys(signing)), cfg
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from automlops.runtime_config import runtime_config
    from automlops.serve.app import serve
    from automlops.signing import trusted_keys

    cfg, signing = runtime_config("serve", args.overrides)
    flags = {"host": args.host, "port": args.port, "workers": args.workers}
    serve(args.model, replace(cfg, **{k: v for k, v in flags.items() if v is not None}), keys=trusted_keys(signing))
    return 0


def _keys(args: argparse.Namespace) -> int:
    from automlops import signing as sig

    if args.action == "generate":
        private, public, kid = sig.generate_keys(args.dir)
        print(
            f"wrote {private} (private, mode 600: keep it secret and out of git) and {public} (public), key id {kid}\n"
            "add to your deploy config (conf/deploy/bundle.yaml):\n"
            "  signing:\n"
            f'    private_key: {private}  # or leave null and export AUTOMLOPS_SIGNING_KEY="$(cat {private})"\n'
            f"    public_keys: [{public}]  # rotation: add the new key's .pub, drop the old one once nothing it signed is served"
        )
        return 0
    from automlops.bundle import MANIFEST, verify_bundle
    from automlops.model_registry import resolve
    from automlops.runtime_config import runtime_config

    signing = sig.signer(runtime_config(None, args.overrides)[1])
    if signing is None:
        raise ConfigError(
            "keys sign: no private key; set deploy.signing.private_key (or put the PEM in $AUTOMLOPS_SIGNING_KEY), "
            "e.g. `automlops keys sign MODEL deploy.signing.private_key=keys/signing.key`"
        )
    folder = resolve(args.model)
    verify_bundle(
        folder, keys=sig.NO_KEYS
    )  # every sha256 must match: signing vouches for the files as they are; any old signature is replaced
    sig.sign_manifest(folder / MANIFEST, signing)
    print(f"signed {folder}/{MANIFEST} with key {signing.key_id} ({sig.SIGNATURE})")
    return 0
