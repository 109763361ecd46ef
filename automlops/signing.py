"""Signed bundles: an Ed25519 signature over a bundle's manifest.json, which holds the sha256 of every
other file, so one signature covers the whole bundle. The sha256 list alone only detects corruption:
whoever can replace model.joblib can re-hash it in the manifest, and unpickling runs their code.
A signature can only be made with the private key, so with deploy.signing.public_keys configured a
bundle loads only when one of those keys signed exactly its manifest (checked before unpickling).

    manifest.sig   {"algorithm": "ed25519", "key_id": "<16 hex>", "signature": "<base64>"}

The key id (the first 16 hex digits of the sha256 of the raw public key) picks the verifying key
among several, so a new key can sign while bundles signed by the old one still load (rotation).
`cryptography` is imported only when a key is used."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automlops.config.schema import SigningConfig
from automlops.errors import BundleError, ConfigError
from automlops.io import write_text_atomic

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE = "manifest.sig"
ALGORITHM = "ed25519"
PRIVATE_FILE, PUBLIC_FILE = "signing.key", "signing.pub"  # what `automlops keys generate DIR` writes


def key_id(public_key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    key: Ed25519PrivateKey
    key_id: str
    source: str  # the file or environment variable the key came from, for messages


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys a bundle may be signed by; none: signatures are not checked (sha256 only)."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)  # key id -> key
    paths: tuple[str, ...] = ()  # where they came from: handed to subprocesses (infra validation, probes)

    def __bool__(self) -> bool:
        return bool(self.keys)


NO_KEYS = TrustedKeys()


def trusted_keys(cfg: SigningConfig) -> TrustedKeys:
    """deploy.signing.public_keys read and parsed; an unreadable or non-Ed25519 file is a ConfigError."""
    if not cfg.public_keys:
        return NO_KEYS
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    keys: dict[str, Ed25519PublicKey] = {}
    for index, name in enumerate(cfg.public_keys):
        where = f"deploy.signing.public_keys[{index}]"
        data = _read(Path(name), where, "public key")
        try:
            key = load_pem_public_key(data)
        except ValueError as error:
            raise ConfigError(
                f"{where}: {name} is not a PEM public key ({_first(error)}); "
                "give the .pub file that `automlops keys generate` wrote"
            ) from None
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigError(
                f"{where}: {name} is a {type(key).__name__.lstrip('_')}, not an Ed25519 key; "
                "create one with `automlops keys generate DIR`"
            )
        keys[key_id(key)] = key
    return TrustedKeys(keys, tuple(str(Path(name).resolve()) for name in cfg.public_keys))


def keys_override(keys: TrustedKeys) -> str:
    """The command-line override that gives a subprocess (`automlops serve` in infra validation)
    exactly these keys, whatever conf/ says: [] too, so both decide alike."""
    quoted = ",".join("'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'" for path in keys.paths)
    return f"deploy.signing.public_keys=[{quoted}]"


def signer(cfg: SigningConfig) -> Signer | None:
    """The private key from deploy.signing.private_key (a file) or else the environment variable
    deploy.signing.private_key_env names; None when neither is set (bundles are not signed)."""
    if cfg.private_key:
        where, source = "deploy.signing.private_key", cfg.private_key
        data = _read(Path(cfg.private_key), where, "private key")
    elif cfg.private_key_env and os.environ.get(cfg.private_key_env, "").strip():
        where, source = f"deploy.signing.private_key_env ({cfg.private_key_env})", f"${cfg.private_key_env}"
        data = os.environ[cfg.private_key_env].strip().encode() + b"\n"
    else:
        return None
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:  # TypeError: the key is encrypted
        raise ConfigError(
            f"{where}: {source} is not an unencrypted PEM private key ({_first(error)}); "
            "create one with `automlops keys generate DIR`"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(
            f"{where}: {source} is a {type(key).__name__.lstrip('_')}, not an Ed25519 key; "
            "create one with `automlops keys generate DIR`"
        )
    return Signer(key, key_id(key.public_key()), source)


def check_signing(cfg: SigningConfig) -> Signer | None:
    """What package and deploy sign with, checked against what loads will accept: with public keys
    configured, a bundle this run cannot sign, or signs with an untrusted key, would be refused at the
    gate, so say it now."""
    signing, trusted = signer(cfg), trusted_keys(cfg)
    if trusted and signing is None:
        raise ConfigError(
            f"deploy.signing.public_keys is set, so every bundle must be signed, but no private key is configured: "
            f"set deploy.signing.private_key to its file or put the PEM in ${cfg.private_key_env or 'AUTOMLOPS_SIGNING_KEY'}"
        )
    if trusted and signing is not None and signing.key_id not in trusted.keys:
        raise ConfigError(
            f"deploy.signing: the private key {signing.source} (id {signing.key_id}) matches none of "
            f"deploy.signing.public_keys (ids {', '.join(trusted.keys)}); add its public key to the list"
        )
    return signing


def sign_manifest(manifest: Path, signing: Signer | None) -> None:
    """Write manifest.sig beside `manifest` for its bytes as they are now; without a signer, remove a
    stale one (a re-sealed manifest no longer matches it)."""
    target = manifest.parent / SIGNATURE
    if signing is None:
        target.unlink(missing_ok=True)
        return
    signature = signing.key.sign(manifest.read_bytes())
    write_text_atomic(
        target,
        json.dumps(
            {"algorithm": ALGORITHM, "key_id": signing.key_id, "signature": base64.b64encode(signature).decode()},
            indent=2,
        )
        + "\n",
    )


def verify_signature(folder: Path, manifest: bytes, keys: TrustedKeys) -> None:
    """Refuse the bundle unless one of `keys` signed exactly these manifest bytes; no keys: nothing
    to check. Each message names the bundle, why, and what to do."""
    if not keys:
        return
    from cryptography.exceptions import InvalidSignature

    file = folder / SIGNATURE
    sign_it = f"sign it with `automlops keys sign {folder}` (deploy.signing.private_key) if you trust its content"
    if not file.is_file():
        raise BundleError(
            f"bundle {folder}: not signed (no {SIGNATURE}) and deploy.signing.public_keys is set; "
            f"refusing to load it. Republish it from a run with a signing key, or {sign_it}"
        )
    try:
        record: dict[str, Any] = json.loads(file.read_text())
        kid, signature = str(record["key_id"]), base64.b64decode(record["signature"], validate=True)
        if record.get("algorithm") != ALGORITHM:
            raise ValueError(f"algorithm {record.get('algorithm')!r}, not {ALGORITHM}")
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise BundleError(
            f"bundle {file}: not a valid signature file ({_first(error)}); refusing to load it. "
            f"Republish the bundle, or {sign_it}"
        ) from None
    key = keys.keys.get(kid)
    if key is None:
        raise BundleError(
            f"bundle {folder}: signed by key {kid}, which is not among deploy.signing.public_keys "
            f"(ids {', '.join(keys.keys)}); refusing to load it. Add that public key to the list if you trust it, "
            f"or {sign_it}"
        )
    try:
        key.verify(signature, manifest)
    except InvalidSignature:
        raise BundleError(
            f"bundle {folder}: {SIGNATURE} does not match its manifest.json (changed after signing, or a "
            f"signature from another bundle); refusing to load it. Republish it from a trusted run"
        ) from None


def generate_keys(folder: Path) -> tuple[Path, Path, str]:
    """A new Ed25519 key pair in `folder`: the private key 0600, the public key 0644. Never overwrites."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    private, public = folder / PRIVATE_FILE, folder / PUBLIC_FILE
    existing = [str(p) for p in (private, public) if p.exists()]
    if existing:
        raise ConfigError(
            f"keys generate: {', '.join(existing)} already exist(s); pick another folder (a key is never overwritten)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    public.chmod(0o644)
    return private, public, key_id(key.public_key())


def _read(path: Path, where: str, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(
            f"{where}: cannot read the {what} {path} ({error.strerror}); "
            "fix the path (relative to the project root) or create keys with `automlops keys generate DIR`"
        ) from None


def _first(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
