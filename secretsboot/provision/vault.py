"""Vault (or OpenBao): one ACL policy and one auth role per service.

Policies are named ``secretsboot-<spec>-<service>`` and say so in their first
line; a role is this spec's when its ``token_policies`` hold one of those
policies (Vault roles carry no free-form metadata). Reads: one LIST of the
policies and of each auth mount's roles, one read per policy or role the spec
names or manages.

Connection: ``VAULT_ADDR`` (else ``vault.address``), ``VAULT_TOKEN`` (else
``~/.vault-token``), ``VAULT_CACERT`` (else ``vault.caCert``), ``VAULT_NAMESPACE``.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from secretsboot.errors import BadInputError, DeniedError, NotFoundError, UnavailableError
from secretsboot.provision.desired import vault_policy_prefix
from secretsboot.provision.model import Action, Change, Desired, Observed, ResourceKey, System
from secretsboot.spec import Spec

T = TypeVar("T")


class VaultBackend:
    system = System.VAULT

    def __init__(self, spec: Spec, client: Any) -> None:
        self.spec = spec
        self.client = client
        self.calls = 0
        self._lock = threading.Lock()
        self.prefix = vault_policy_prefix(spec)

    @classmethod
    def connect(cls, spec: Spec) -> VaultBackend:
        import hvac

        if spec.vault is None:
            raise BadInputError("the spec has no vault section")
        address = os.environ.get("VAULT_ADDR") or spec.vault.address
        token = os.environ.get("VAULT_TOKEN")
        if not token:
            token_file = Path.home() / ".vault-token"
            token = token_file.read_text().strip() if token_file.is_file() else None
        if not token:
            raise DeniedError(
                "vault: no token to provision with", hint="set VAULT_TOKEN (or vault login)"
            )
        ca = os.environ.get("VAULT_CACERT") or spec.vault.ca_cert
        namespace = os.environ.get("VAULT_NAMESPACE") or spec.vault.namespace
        client = hvac.Client(
            url=address, token=token, verify=ca if ca else True, namespace=namespace, timeout=15
        )
        return cls(spec, client)

    def close(self) -> None:
        self.client.adapter.close()

    def _read(self, what: str, fn: Callable[[], T]) -> T:
        """A read, retried on 429/5xx and connection failures (writes retry in apply)."""
        delay = 0.2
        for attempt in range(4):
            try:
                return self._call(what, fn)
            except UnavailableError:
                if attempt == 3:
                    raise
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        import hvac.exceptions as hx
        import requests

        with self._lock:
            self.calls += 1
        try:
            return fn()
        except (hx.Forbidden, hx.Unauthorized) as exc:
            raise DeniedError(
                f"vault: {what}: permission denied: {_first(exc)}",
                hint="use a token whose policy allows this path (sys/policies/acl/*, "
                "auth/<mount>/role/*)",
            ) from None
        except hx.InvalidPath as exc:
            raise NotFoundError(f"vault: {what}: no such path: {_first(exc)}") from None
        except (hx.RateLimitExceeded, hx.VaultDown, hx.InternalServerError, hx.BadGateway) as exc:
            raise UnavailableError(
                f"vault: {what}: {type(exc).__name__}", hint="retry later"
            ) from None
        except hx.InvalidRequest as exc:
            raise BadInputError(f"vault: {what}: invalid request: {_first(exc)}") from None
        except requests.RequestException as exc:
            raise UnavailableError(
                f"vault: {what}: cannot reach {self.client.url}: {type(exc).__name__}",
                hint="check VAULT_ADDR / VAULT_CACERT",
            ) from None

    # -- reads ---------------------------------------------------------------------

    def observe(self, desired: Iterable[Desired]) -> dict[ResourceKey, Observed]:
        desired = [d for d in desired if d.system == System.VAULT]
        out: dict[ResourceKey, Observed] = {}
        listed = self._read("list ACL policies", lambda: self.client.list("sys/policies/acl"))
        existing = set(((listed or {}).get("data") or {}).get("keys") or [])
        wanted = {d.key.name for d in desired if d.key.kind == "policy"}
        names = sorted((existing & wanted) | {n for n in existing if n.startswith(self.prefix)})
        mounts = sorted(
            {d.extra["mount"] for d in desired if d.key.kind == "role"} | self._auth_mounts()
        )
        jobs: list[tuple[str, str]] = [("policy", n) for n in names]
        for mount in mounts:
            got = self._read(
                f"list roles of auth/{mount}",
                functools.partial(self.client.list, f"auth/{mount}/role"),
            )
            for role in ((got or {}).get("data") or {}).get("keys") or []:
                jobs.append(("role", f"{mount}/{role}"))

        def read(job: tuple[str, str]) -> Any:
            kind, name = job
            if kind == "policy":
                return self._read(
                    f"read policy {name}", lambda: self.client.read(f"sys/policies/acl/{name}")
                )
            mount, _, role = name.partition("/")
            return self._read(
                f"read role auth/{mount}/role/{role}",
                lambda: self.client.read(f"auth/{mount}/role/{role}"),
            )

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(read, jobs))
        for (kind, name), got in zip(jobs, results, strict=True):
            data = (got or {}).get("data") if isinstance(got, dict) else None
            if data is None:
                continue
            key = ResourceKey(System.VAULT, kind, name)
            if kind == "policy":
                text = data.get("policy", "")
                out[key] = Observed(
                    key,
                    {"policy": text},
                    managed=name.startswith(self.prefix),
                    services=(name[len(self.prefix) :],),
                )
            else:
                policies = [str(p) for p in data.get("token_policies") or []]
                mine = [p for p in policies if p.startswith(self.prefix)]
                out[key] = Observed(
                    key,
                    data,
                    managed=bool(mine),
                    services=tuple(p[len(self.prefix) :] for p in mine),
                    raw={"mount": name.partition("/")[0], "role": name.partition("/")[2]},
                )
        return out

    def _auth_mounts(self) -> set[str]:
        assert self.spec.vault is not None  # noqa: S101
        auth = self.spec.vault.auth
        return {m.mount for m in (auth.kubernetes, auth.jwt, auth.azure) if m is not None}

    def preflight(self, desired: Iterable[Desired]) -> None:
        """Token valid and allowed to write the policies and roles (sys/capabilities-self)."""
        paths = []
        for d in desired:
            if d.system != System.VAULT:
                continue
            if d.key.kind == "policy":
                paths.append(f"sys/policies/acl/{d.key.name}")
            else:
                paths.append(f"auth/{d.extra['mount']}/role/{d.extra['role']}")
        if not paths:
            return
        got = self._call(
            "check token capabilities (sys/capabilities-self)",
            lambda: self.client.write_data("sys/capabilities-self", data={"paths": paths}),
        )
        data = (got or {}).get("data") or got or {}
        for path in paths:
            caps = set(data.get(path) or [])
            if caps & {"root", "sudo"} or {"create", "update"} <= caps:
                continue
            raise DeniedError(
                f"vault: the token may not write {path} (capabilities: {sorted(caps) or 'none'})",
                hint="use a token with create/update on sys/policies/acl/* and auth/*/role/*",
            )

    # -- writes --------------------------------------------------------------------

    def apply(self, change: Change) -> None:
        key = change.key
        svc = ", ".join(change.services) or "-"
        what = f"{change.action.value} {key.kind} {key.name} (service {svc})"
        path = (
            f"sys/policies/acl/{key.name}"
            if key.kind == "policy"
            else f"auth/{key.name.partition('/')[0]}/role/{key.name.partition('/')[2]}"
        )
        if change.action is Action.DELETE:
            self._call(what, lambda: self.client.delete(path))
            return
        want = change.desired
        assert want is not None  # noqa: S101
        body = dict(want.body)
        self._call(what, lambda: self.client.write_data(path, data=body))


def _first(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:300]
