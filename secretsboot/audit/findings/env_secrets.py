"""SB101: a Kubernetes Secret handed to a container as environment variables.

Flagged (medium)::

    env:
      - name: DB_PASSWORD
        valueFrom: {secretKeyRef: {name: db, key: password}}
    envFrom:
      - secretRef: {name: app-secrets}

The reference architecture delivers secrets as files: environment variables leak
through ``/proc/<pid>/environ``, crash dumps, child processes and debug endpoints,
and a rotated secret never reaches a running process's environment. Every
container is checked, init and ephemeral containers included.
"""

from __future__ import annotations

from collections.abc import Iterator

from secretsboot.audit.findings._base import Context, Rule, as_dict, as_list
from secretsboot.audit.model import Finding, Severity

SB101 = Rule(
    id="SB101",
    name="secret-in-env",
    title="Secret passed as an environment variable",
    severity=Severity.MEDIUM,
    description=(
        "A Kubernetes Secret reaches the container as an environment variable. Environment "
        "variables leak through /proc, crash dumps, child processes and diagnostics, and a "
        "rotated secret never reaches a running process."
    ),
    fix=(
        "Mount the secret as a file instead (a secret volume, or the Secrets Store CSI driver "
        "with workload identity) and point the app at the path, e.g. DB_PASSWORD_FILE."
    ),
    help="secretKeyRef and envFrom secretRef are both reported, in every container.",
)

RULES = (SB101,)


def detect(ctx: Context) -> Iterator[Finding]:
    for pod in ctx.pods:
        for c in pod.containers():
            for i, env in enumerate(as_list(c.body.get("env"))):
                ref = as_dict(as_dict(as_dict(env).get("valueFrom")).get("secretKeyRef"))
                if not ref:
                    continue
                var = str(as_dict(env).get("name") or "")
                target = f"{ref.get('name') or '?'}/{ref.get('key') or '?'}"
                yield pod.finding(
                    SB101,
                    evidence=pod.at((*c.path, "env", i, "valueFrom", "secretKeyRef"), target),
                    message=(f"container '{c.name}' gets Secret key {target} as env var '{var}'"),
                )
            for i, src in enumerate(as_list(c.body.get("envFrom"))):
                ref = as_dict(as_dict(src).get("secretRef"))
                if not ref:
                    continue
                name = str(ref.get("name") or "?")
                yield pod.finding(
                    SB101,
                    evidence=pod.at((*c.path, "envFrom", i, "secretRef"), name),
                    message=(f"container '{c.name}' gets every key of Secret '{name}' as env vars"),
                )
