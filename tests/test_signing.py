"""Signed bundles: with deploy.signing.public_keys set, a bundle loads only when one of those keys
signed exactly its manifest.json, checked before anything is unpickled. Each tampering is tried on
real keys and a real bundle (the session's penguins run), through the real consumers: predict,
serve (HTTP on 127.0.0.1), hot reload, promote, monitor and the gate. The attacker's model is a
pickle whose __reduce__ creates a marker file: the file must never appear."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pickle
import shutil
import stat
from pathlib import Path

import pytest
from conftest import REPO, cli
from test_serve import running_server

from automlops.bundle import MANIFEST, load_bundle, verify_bundle
from automlops.config.schema import SigningConfig
from automlops.deploy.package import seal
from automlops.errors import BundleError, ConfigError
from automlops.model_registry import add_version
from automlops.records import Manifest
from automlops.serve.holder import ModelHolder
from automlops.signing import SIGNATURE, check_signing, generate_keys, sign_manifest, signer, trusted_keys


class Planted:
    """Unpickling this calls open(marker, "w"): the attacker's code, made visible."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (self.marker, "w")


def plant(bundle: Path, marker: Path) -> None:
    """The attack: replace the model with a malicious pickle and re-hash it in manifest.json (which
    anyone can do); the attacker cannot re-sign it with a trusted key."""
    model = bundle / "model" / "model.joblib"
    model.write_bytes(pickle.dumps(Planted(marker)))
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"]["model/model.joblib"] = hashlib.sha256(model.read_bytes()).hexdigest()
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=2))


def keys_arg(*pubs: Path) -> str:
    return f"deploy.signing.public_keys=[{','.join(str(p) for p in pubs)}]"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """name -> (private, public): `old` and `new` (a rotation) and the attacker's own; `new` made by the CLI."""
    folder = tmp_path_factory.mktemp("keys")
    made = cli("keys", "generate", str(folder / "new"), cwd=folder)
    assert made.returncode == 0, made.stderr
    pairs = {"new": (folder / "new" / "signing.key", folder / "new" / "signing.pub")}
    for name in ("old", "attacker"):
        private, public, _ = generate_keys(folder / name)
        pairs[name] = (private, public)
    return pairs


def sign(bundle: Path, private: Path) -> None:
    sign_manifest(bundle / MANIFEST, signer(SigningConfig(private_key=str(private))))


def trusting(*pubs: Path):  # noqa: ANN201
    return trusted_keys(SigningConfig(public_keys=[str(p) for p in pubs]))


@pytest.fixture
def signed(penguins_run, keys, tmp_path: Path) -> Path:
    """A copy of the run's v1, signed by the `new` key."""
    root, _ = penguins_run
    bundle = tmp_path / "bundle"
    shutil.copytree(root / "models" / "penguins" / "versions" / "1", bundle)
    sign(bundle, keys["new"][0])
    return bundle


def test_keys_generate_writes_a_private_key_only_its_owner_reads_and_prints_the_config(keys, tmp_path: Path) -> None:
    private, public = keys["new"]
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and b"PRIVATE KEY" in private.read_bytes()
    assert b"PUBLIC KEY" in public.read_bytes()
    again = cli("keys", "generate", str(private.parent), cwd=tmp_path)
    assert (
        again.returncode == 2
        and "already exist" in again.stderr
        and private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
    )
    made = cli("keys", "generate", str(tmp_path / "k"), cwd=tmp_path)
    assert (
        f"private_key: {tmp_path / 'k' / 'signing.key'}" in made.stdout
        and f"public_keys: [{tmp_path / 'k' / 'signing.pub'}]" in made.stdout
    )


@pytest.mark.slow  # the session's penguins run
def test_a_signed_bundle_loads_and_each_tampering_is_refused_before_unpickling(
    signed: Path, keys, tmp_path: Path
) -> None:
    trusted = trusting(keys["new"][1])
    assert load_bundle(signed, keys=trusted).manifest.name == "penguins"
    marker = tmp_path / "PWNED"

    swapped = tmp_path / "swapped"  # another genuinely signed bundle's signature on this one
    shutil.copytree(signed, swapped)
    seal(
        swapped,
        Manifest.from_dict({**json.loads((swapped / MANIFEST).read_text()), "created_at": "2020-01-01T00:00:00+00:00"}),
    )
    sign(swapped, keys["new"][0])
    assert load_bundle(swapped, keys=trusted)
    plant(signed, marker)
    with pytest.raises(BundleError, match=r"manifest.sig does not match its manifest.json .*refusing to load it"):
        load_bundle(signed, keys=trusted)  # model replaced, manifest re-hashed, old signature kept
    shutil.copy(swapped / SIGNATURE, signed / SIGNATURE)
    with pytest.raises(BundleError, match="does not match its manifest.json"):
        load_bundle(signed, keys=trusted)  # a valid signature, of another manifest
    shutil.copy(swapped / MANIFEST, signed / MANIFEST)  # that manifest too: its sha256 list no longer fits the model
    with pytest.raises(BundleError, match="model.joblib does not match its sha256"):
        load_bundle(signed, keys=trusted)

    plant(signed, marker)
    sign(signed, keys["attacker"][0])  # re-signed, with the attacker's own key
    with pytest.raises(BundleError, match=r"signed by key [0-9a-f]{16}, which is not among deploy.signing.public_keys"):
        load_bundle(signed, keys=trusted)
    (signed / SIGNATURE).unlink()
    with pytest.raises(BundleError, match=rf"bundle {signed}: not signed \(no manifest.sig\).*automlops keys sign"):
        load_bundle(signed, keys=trusted)
    (signed / SIGNATURE).write_text("{not json")
    with pytest.raises(BundleError, match="not a valid signature file"):
        verify_bundle(signed, keys=trusted)
    assert not marker.exists()

    (signed / SIGNATURE).unlink()  # no keys configured: today's behaviour, sha256 only, which the attack passes
    assert verify_bundle(signed).name == "penguins"


@pytest.mark.slow  # the session's penguins run
def test_rotation_old_key_verifies_while_listed_and_is_refused_once_removed(signed: Path, keys) -> None:
    sign(signed, keys["old"][0])
    assert load_bundle(signed, keys=trusting(keys["old"][1], keys["new"][1]))
    with pytest.raises(BundleError, match="not among deploy.signing.public_keys"):
        verify_bundle(signed, keys=trusting(keys["new"][1]))


def test_key_config_errors_name_the_key(keys, tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="public_keys is set, so every bundle must be signed, but no private key is configured"
    ):
        check_signing(
            SigningConfig(private_key_env="", public_keys=[str(keys["new"][1])])
        )  # nothing package made would load
    with pytest.raises(ConfigError, match=r"the private key .* matches none of deploy.signing.public_keys"):
        check_signing(SigningConfig(private_key=str(keys["attacker"][0]), public_keys=[str(keys["new"][1])]))
    with pytest.raises(ConfigError, match=r"deploy.signing.public_keys\[1\]: cannot read the public key .*nope.pub"):
        trusting(keys["new"][1], tmp_path / "nope.pub")
    with pytest.raises(ConfigError, match=r"deploy.signing.public_keys\[0\]: .* is not a PEM public key"):
        trusting(keys["new"][0])  # the private key given as a public one
    os.environ["AUTOMLOPS_TEST_KEY"] = keys["old"][0].read_text()
    try:
        assert signer(SigningConfig(private_key_env="AUTOMLOPS_TEST_KEY")).key_id in trusting(keys["old"][1]).keys  # type: ignore[union-attr]
    finally:
        del os.environ["AUTOMLOPS_TEST_KEY"]


@pytest.mark.slow  # the session's penguins run
def test_predict_refuses_the_planted_model_and_never_runs_it(signed: Path, keys, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    example = str(signed / "input_example.json")
    good = cli(
        "predict",
        "--model",
        str(signed),
        "--input",
        example,
        "--output",
        "p.csv",
        keys_arg(keys["new"][1]),
        cwd=tmp_path,
    )
    assert good.returncode == 0, good.stderr
    plant(signed, marker)
    refused = cli(
        "predict",
        "--model",
        str(signed),
        "--input",
        example,
        "--output",
        "q.csv",
        keys_arg(keys["new"][1]),
        cwd=tmp_path,
    )
    assert refused.returncode == 1 and not marker.exists()
    [line] = refused.stderr.strip().splitlines()
    assert (
        line.startswith(f"error: bundle {signed}: manifest.sig does not match its manifest.json")
        and not (tmp_path / "q.csv").exists()
    )


@pytest.mark.slow  # the session's penguins run
def test_serve_refuses_a_planted_model_and_serves_a_signed_one(signed: Path, keys, tmp_path: Path) -> None:
    unsigned = tmp_path / "unsigned"
    shutil.copytree(signed, unsigned)
    (unsigned / SIGNATURE).unlink()
    marker = tmp_path / "PWNED"
    plant(unsigned, marker)
    refused = cli(
        "serve", "--model", str(unsigned), "--port", "8099", keys_arg(keys["new"][1]), cwd=tmp_path, timeout=60
    )
    assert refused.returncode == 1 and "not signed (no manifest.sig)" in refused.stderr and not marker.exists()
    # two workers: each verifies the bundle again with the keys the parent hands them
    with running_server(
        signed,
        "--workers",
        "2",
        keys_arg(keys["old"][1], keys["new"][1]),
        cwd=tmp_path,
        log_file=tmp_path / "serve.log",
    ) as (client, _):
        answer = client.post("/predict", json=json.loads((signed / "input_example.json").read_text()))
        assert answer.status_code == 200 and len(answer.json()["predictions"]) > 0


@pytest.mark.slow  # the session's penguins run
def test_hot_reload_and_promote_refuse_an_unsigned_version(penguins_run, keys, tmp_path: Path) -> None:
    root, _ = penguins_run
    registry = tmp_path / "models" / "penguins"
    shutil.copytree(root / "models" / "penguins", registry)
    unsigned = cli("models", "promote", str(registry), "1", keys_arg(keys["new"][1]), cwd=tmp_path)
    assert unsigned.returncode == 1 and f"bundle {registry}/versions/1: not signed" in unsigned.stderr
    signed = cli(
        "keys", "sign", f"{registry}@1", f"deploy.signing.private_key={keys['new'][0]}", cwd=tmp_path
    )  # a version published before signing
    assert signed.returncode == 0 and f"signed {registry}/versions/1/manifest.json with key" in signed.stdout, (
        signed.stderr
    )
    planted = tmp_path / "v2"
    shutil.copytree(registry / "versions" / "1", planted)
    marker = tmp_path / "PWNED"
    plant(planted, marker)
    add_version(registry, planted, 2)

    promoted = cli("models", "promote", str(registry), "2", keys_arg(keys["new"][1]), cwd=tmp_path)
    assert promoted.returncode == 1 and "manifest.sig does not match" in promoted.stderr
    assert json.loads((registry / "aliases.json").read_text())["aliases"]["champion"] == 1

    holder = ModelHolder(str(registry), reload_interval=0.5, keys=trusting(keys["new"][1]))
    aliases = json.loads((registry / "aliases.json").read_text())
    aliases["aliases"]["champion"] = 2  # moved behind promote's back
    (registry / "aliases.json").write_text(json.dumps(aliases))
    holder.check_now()
    assert holder.bundle.manifest.version == 1 and not marker.exists()

    monitored = cli(
        "monitor",
        "--model",
        f"{registry}@champion",
        "--data",
        str(planted / "input_example.json"),
        keys_arg(keys["new"][1]),
        "monitor.out=m",
        cwd=tmp_path,
    )
    assert monitored.returncode == 1 and "manifest.sig does not match" in monitored.stderr and not marker.exists()


@pytest.mark.slow  # the session's penguins run
def test_gate_and_deploy_sign_verify_and_refuse_planted_models(penguins_run, keys, tmp_path: Path) -> None:
    root, _ = penguins_run
    project = tmp_path / "project"
    shutil.copytree(root, project, symlinks=True)
    common = (
        "+experiment=penguins",
        "search.n_trials=2",
        "gate.infra.requests=2",
        keys_arg(keys["old"][1], keys["new"][1]),
    )
    # another input example: a candidate with v1's content would publish no new version (deploy's content digest)
    assert (
        cli(
            "compose", *common, "deploy.example_rows=3", f"deploy.signing.private_key={keys['new'][0]}", cwd=project
        ).returncode
        == 0
    )
    packaged = cli("stage", "package", cwd=project)
    assert packaged.returncode == 0, packaged.stderr
    assert (project / "artifacts" / "bundle" / SIGNATURE).is_file()

    sign(
        project / "models" / "penguins" / "versions" / "1", keys["old"][0]
    )  # the champion, signed by the key before rotation
    gate = cli(
        "stage", "gate", cwd=project
    )  # candidate and champion verified; infra serves the candidate with the keys
    assert gate.returncode == 0, gate.stderr
    assert json.loads((project / "metrics" / "blessing.json").read_text())["infra"]["passed"]
    deployed = cli("stage", "deploy", cwd=project)
    assert deployed.returncode == 0, deployed.stderr
    v2 = project / "models" / "penguins" / "versions" / "2"
    assert load_bundle(v2, keys=trusting(keys["new"][1])).manifest.version == 2  # re-signed after the version and card

    marker = tmp_path / "PWNED"
    plant(v2, marker)  # the champion planted: the next gate loads it to compare
    gate = cli("stage", "gate", cwd=project)
    assert gate.returncode == 1 and "manifest.sig does not match" in gate.stderr and not marker.exists()
    plant(project / "artifacts" / "bundle", marker)  # the candidate planted after package
    gate = cli("stage", "gate", cwd=project)
    assert (
        gate.returncode == 1 and "artifacts/bundle: manifest.sig does not match" in gate.stderr and not marker.exists()
    )


def test_every_bundle_load_in_automlops_passes_the_configured_keys() -> None:
    """Whoever loads or verifies a bundle (or hands one to a server) says which keys verify it: a
    call without `keys=` would silently accept unsigned bundles."""
    guarded = {
        "load_bundle",
        "verify_bundle",
        "load_warm",
        "ModelHolder",
        "create_app",
        "serve",
        "monitor",
        "check_serving",
        "serving_requirements",
        "probe_engine",
    }
    missing = []
    for file in sorted((REPO / "automlops").rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in guarded and not any(keyword.arg == "keys" for keyword in node.keywords):
                    missing.append(f"{file.relative_to(REPO)}:{node.lineno} {name}()")
    assert not missing, missing
