"""The demo's vocabulary: its steps, its result records, where its example spec lives."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from secretsboot._fs import atomic_write_text
from secretsboot.errors import BadInputError, SecretsbootError

DEFAULT_DIR = Path(".secretsboot-demo")
EXAMPLE = "drone-delivery.yaml"  # package data: secretsboot/sandbox/examples/
FETCH_TIMEOUT = 60.0
STEPS = ("sandbox", "seed", "provision", "fetch", "fallback", "denial", "inject", "audit")
TITLES = {
    "sandbox": "start Kubernetes, Entra ID, IMDS, ARM and Key Vault fakes and OpenBao",
    "seed": "create the Key Vaults and the secret values a platform already has",
    "provision": "identities, federated credentials, grants, Vault roles, service accounts",
    "fetch": "each service's init container, as its pod runs it (own token, own identity)",
    "fallback": "Key Vault down: a secret comes from its Kubernetes Secret fallback",
    "denial": "one service reaching for another's secret",
    "inject": "add the init container to the services' Deployments",
    "audit": "classify how each workload gets its secrets, write the HTML report",
}

Echo = Callable[[str], None]


class DemoStepFailed(SecretsbootError):
    """A demo step failed; the message names the step. Exit code of the cause."""

    def __init__(self, step: str, cause: SecretsbootError) -> None:
        super().__init__(f"demo step '{step}' failed: {cause.message}", hint=cause.hint)
        self.step = step
        self.exit_code = cause.exit_code


def find_example() -> Path:
    """The Drone Delivery example spec, shipped with the package (works from a wheel)."""
    from importlib.resources import files

    path = Path(str(files("secretsboot.sandbox") / "examples" / EXAMPLE))
    if not path.is_file():
        raise BadInputError(
            f"the example spec {EXAMPLE} is missing from the installed package",
            hint="reinstall secretsboot[sandbox], or pass --spec",
        )
    return path


@dataclass
class Fetched:
    """What one service's pod got: per secret, where it landed and its fingerprint."""

    service: str
    identity: str
    rows: list[tuple[str, str, str, bool]] = field(default_factory=list)  # name, where, fp, ok
    seconds: float = 0.0


@dataclass
class DemoResult:
    workdir: Path
    spec_path: Path
    sandbox_env_file: Path
    fetched: list[Fetched] = field(default_factory=list)
    denial: str = ""
    injected_manifests: Path | None = None
    report: Path | None = None
    seconds: float = 0.0


@contextlib.contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_text(path, text, mode=mode, what="demo file")
