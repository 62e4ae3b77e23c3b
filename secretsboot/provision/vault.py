"""Vault (or OpenBao): one ACL policy and one auth role per service.

Policies are named ``secretsboot-<spec>-<service>`` and their first line is
secretsboot's marker (:mod:`.ownership`): the spec, the service, and who made the
policy and the role (created or adopted). A role is this spec's when its
``token_policies`` hold one of the spec's marked policies (Vault roles carry no
free-form metadata). Reads: the mounts (sys/mounts, sys/auth) checked once, one
LIST of the policies and of each auth mount's roles, one read per policy or role
the spec names or manages.

Connection: ``VAULT_ADDR`` (else ``vault.address``), ``VAULT_TOKEN`` (else
``~/.vault-token``), ``VAULT_CACERT`` (else ``vault.caCert``), ``VAULT_NAMESPACE``.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from secretsboot.errors import BadInputError, DeniedError, NotFoundError, UnavailableError
from secretsboot.provision._calls import CountedApi, first_line, read_retried
from secretsboot.provision.model import (
    Action,
    Change,
    Desired,
    Note,
    Observed,
    ResourceKey,
    System,
)
from secretsboot.provision.names import vault_policy_prefix
from secretsboot.provision.ownership import known, parse_policy_marker, without_marker
from secretsboot.spec import Spec

T = TypeVar("T")
log = logging.getLogger(__name__)


class VaultBackend(CountedApi):
    system = System.VAULT

    def __init__(self, spec: Spec, client: Any) -> None:
        super().__init__(spec)
        self.client = client
        self.prefix = vault_policy_prefix(spec)
        self.problems: list[Note] = []

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
        return read_retried(lambda: self._call(what, fn))

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        import hvac.exceptions as hx
        import requests

        self.count_call()
        try:
            return fn()
        except (hx.Forbidden, hx.Unauthorized) as exc:
            raise DeniedError(
                f"vault: {what}: permission denied: {first_line(exc)}",
                hint="use a token whose policy allows this path (sys/policies/acl/*, "
                "auth/<mount>/role/*)",
            ) from None
        except hx.InvalidPath as exc:
            raise NotFoundError(f"vault: {what}: no such path: {first_line(exc)}") from None
        except (hx.RateLimitExceeded, hx.VaultDown, hx.InternalServerError, hx.BadGateway) as exc:
            raise UnavailableError(
                f"vault: {what}: {type(exc).__name__}", hint="retry later"
            ) from None
        except hx.InvalidRequest as exc:
            raise BadInputError(f"vault: {what}: invalid request: {first_line(exc)}") from None
        except requests.RequestException as exc:
            raise UnavailableError(
                f"vault: {what}: cannot reach {self.client.url}: {type(exc).__name__}",
                hint="check VAULT_ADDR / VAULT_CACERT",
            ) from None

    # -- reads ---------------------------------------------------------------------

    def observe(self, desired: Iterable[Desired]) -> dict[ResourceKey, Observed]:
        """The spec's policies and roles, and every policy this spec manages: one LIST of
        the policies, one of each auth mount's roles, one read per policy or role."""
        desired = [d for d in desired if d.system == System.VAULT]
        self.problems, missing_auth = self._check_mounts(desired)
        jobs = self._jobs(desired, missing_auth)
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(self._read_job, jobs))
        found = [
            (kind, name, data)
            for (kind, name), got in zip(jobs, results, strict=True)
            if isinstance(got, dict) and (data := got.get("data")) is not None
        ]
        observed: list[Observed] = []
        markers: dict[str, dict[str, str]] = {}
        for kind, name, data in found:
            if kind == "policy":
                policy, marker = self._policy(name, data)
                observed.append(policy)
                if marker is not None:
                    markers[name] = marker
        # the roles after every policy: a role is the spec's when it hands out a marked one
        observed += [
            self._role(name, data, markers) for kind, name, data in found if kind == "role"
        ]
        return {o.key: o for o in observed}

    def _jobs(self, desired: list[Desired], missing_auth: set[str]) -> list[tuple[str, str]]:
        """The policies and roles to read: the spec's, and every one it manages."""
        listed = self._read("list ACL policies", lambda: self.client.list("sys/policies/acl"))
        existing = set(((listed or {}).get("data") or {}).get("keys") or [])
        wanted = {d.key.name for d in desired if d.key.kind == "policy"}
        names = sorted((existing & wanted) | {n for n in existing if n.startswith(self.prefix)})
        mounts = {d.extra["mount"] for d in desired if d.key.kind == "role"}
        jobs: list[tuple[str, str]] = [("policy", n) for n in names]
        for mount in sorted((mounts | self._auth_mounts()) - missing_auth):
            got = self._read(
                f"list roles of auth/{mount}",
                functools.partial(self.client.list, f"auth/{mount}/role"),
            )
            for role in ((got or {}).get("data") or {}).get("keys") or []:
                jobs.append(("role", f"{mount}/{role}"))
        return jobs

    def _read_job(self, job: tuple[str, str]) -> Any:
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

    def _policy(self, name: str, data: dict[str, Any]) -> tuple[Observed, dict[str, str] | None]:
        """A policy is this spec's when its marker line names the spec; returns the
        policy and, when it is the spec's, its marker."""
        key = ResourceKey(System.VAULT, "policy", name)
        text = str(data.get("policy", "") or data.get("rules", ""))
        marker = parse_policy_marker(text)
        mine = marker is not None and marker.get("spec") == self.spec.metadata.name
        observed = Observed(
            key,
            {"policy": text},
            managed=mine,
            services=(name[len(self.prefix) :],) if mine else (),
            raw={"text": text},
            ownership=known(marker.get("ownership")) if mine and marker else None,
        )
        return observed, marker if mine else None

    def _role(
        self, name: str, data: dict[str, Any], markers: dict[str, dict[str, str]]
    ) -> Observed:
        """A role is this spec's when it hands out one of the spec's (marked) policies;
        that policy's marker records who made the role."""
        key = ResourceKey(System.VAULT, "role", name)
        policies = [str(p) for p in data.get("token_policies") or []]
        mine = [p for p in policies if p in markers]
        owner = known(markers[mine[0]].get("role-ownership")) if mine else None
        return Observed(
            key,
            data,
            managed=bool(mine),
            services=tuple(p[len(self.prefix) :] for p in mine),
            raw={"mount": name.partition("/")[0], "role": name.partition("/")[2]},
            ownership=owner,
        )

    def _check_mounts(self, desired: list[Desired]) -> tuple[list[Note], set[str]]:
        """Every KV mount the sources read and every auth mount the roles live on exists
        (GET sys/mounts, GET sys/auth); a token that may not list them is not asked."""
        wanted_kv: dict[str, set[str]] = {}
        for svc in self.spec.services:
            for secret in svc.secrets:
                for ref in secret.sources:
                    if ref.scheme == "vault":
                        wanted_kv.setdefault(ref.store, set()).add(svc.name)
        wanted_auth: dict[str, set[str]] = {}
        for d in desired:
            if d.key.kind == "role":
                wanted_auth.setdefault(d.extra["mount"], set()).update(d.services)
        problems: list[Note] = []
        missing_auth: set[str] = set()
        for path, wanted, kind in (
            ("sys/mounts", wanted_kv, "secrets engine"),
            ("sys/auth", wanted_auth, "auth method"),
        ):
            if not wanted:
                continue
            try:
                got = self._read(f"list mounts ({path})", functools.partial(self.client.read, path))
            except DeniedError:
                log.warning("vault: the token may not read %s; mounts are not checked", path)
                continue
            data = (got or {}).get("data") or got or {}
            present = {str(k).rstrip("/") for k in data}
            for mount, services in sorted(wanted.items()):
                if mount in present:
                    continue
                if kind == "auth method":
                    missing_auth.add(mount)
                enable = (
                    f"bao secrets enable -path={mount} kv-v2"
                    if kind == "secrets engine"
                    else f"bao auth enable -path={mount} {self._method_of(mount)}"
                )
                problems.append(
                    Note(
                        ", ".join(sorted(services)),
                        "error",
                        f"vault: no {kind} is mounted at '{mount}/' on {self.client.url}",
                        f"enable it ({enable}) or fix the mount in the spec",
                        kind="not-found",
                    )
                )
        return problems, missing_auth

    def _method_of(self, mount: str) -> str:
        assert self.spec.vault is not None  # noqa: S101
        auth = self.spec.vault.auth
        for method in ("kubernetes", "jwt", "azure"):
            cfg = getattr(auth, method)
            if cfg is not None and cfg.mount == mount:
                return method
        return "kubernetes"

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
        if change.action is Action.RELEASE:
            # Only a policy carries secretsboot's record: the text without its marker line.
            # (A role's record lives in its policy's marker, released with the policy.)
            if key.kind == "policy" and change.observed is not None:
                text = without_marker(str(change.observed.raw["text"]))
                self._call(what, lambda: self.client.write_data(path, data={"policy": text}))
            return
        want = change.desired
        assert want is not None  # noqa: S101
        body = dict(want.body)
        self._call(what, lambda: self.client.write_data(path, data=body))
