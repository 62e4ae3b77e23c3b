"""SB102-SB104: a plaintext credential written into the manifest.

SB102 (high; critical for a PEM private key or an Azure account key), an env value::

    env:
      - name: STORAGE_CONNECTION
        value: "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Zm9v...=="

SB103 (same severities), a container's ``command``/``args``::

    args: ["--db-password=Tr0ub4dor&3", "--listen=:8080"]

SB104 (same severities), a ConfigMap ``data`` value, by key name or by content::

    kind: ConfigMap
    data:
      appsettings.json: '{"ConnectionStrings": {"Db": "Server=db;Password=Pa55w0rd!"}}'

Not flagged: ``*_FILE`` paths, ``$(VAR)`` references, client/tenant ids (GUIDs),
vault names, URLs without credentials, empty strings, booleans, numbers,
placeholders such as ``<password>``, and references an injector resolves
(``name@azurekeyvault``, ``vault:secret/data/x#key``). Values are shown redacted.
"""

from __future__ import annotations

from collections.abc import Iterator

from secretsboot.audit.findings._base import Context, Rule, as_dict, as_list, evidence_at
from secretsboot.audit.findings._credential import Hit, judge, judge_args, judge_text
from secretsboot.audit.fingerprint import redact
from secretsboot.audit.model import Finding, Severity

_FIX = (
    "Remove the value from the manifest and rotate it (it is in version control now). "
    "Store it in Key Vault and mount it with the Secrets Store CSI driver and workload identity."
)

SB102 = Rule(
    id="SB102",
    name="literal-credential-env",
    title="Plaintext credential in an environment variable",
    severity=Severity.HIGH,
    description=(
        "A password, key, token or connection string is written as a literal env value: "
        "everyone who can read the manifest or the pod spec has it, and it cannot be rotated "
        "without a redeploy."
    ),
    fix=_FIX,
    help="Judged by value shape and by name; PEM private keys and Azure account keys are critical.",
)
SB103 = Rule(
    id="SB103",
    name="literal-credential-args",
    title="Plaintext credential in container command or args",
    severity=Severity.HIGH,
    description=(
        "A credential is passed on the command line: it is in the manifest, in the pod spec "
        "and in the process list of the node."
    ),
    fix=_FIX + " Let the program read it from a file.",
)
SB104 = Rule(
    id="SB104",
    name="literal-credential-configmap",
    title="Plaintext credential in a ConfigMap",
    severity=Severity.HIGH,
    description=(
        "A ConfigMap holds a credential. ConfigMaps are not secrets: they are readable by "
        "anyone with read access to the namespace's configuration and are never encrypted."
    ),
    fix=_FIX,
)

RULES = (SB102, SB103, SB104)


def _why(hit: Hit) -> str:
    return f"({hit.label}; {hit.severity.label})"


def detect(ctx: Context) -> Iterator[Finding]:
    for pod in ctx.pods:
        for c in pod.containers():
            for i, env in enumerate(as_list(c.body.get("env"))):
                env = as_dict(env)
                name, value = str(env.get("name") or ""), env.get("value")
                hit = judge(name, value)
                if hit and isinstance(value, str):
                    yield pod.finding(
                        SB102,
                        evidence=pod.at((*c.path, "env", i, "value"), redact(value)),
                        message=(
                            f"container '{c.name}' sets env var '{name}' to a literal "
                            f"credential {_why(hit)}"
                        ),
                        severity=hit.severity,
                    )
            for field_name in ("command", "args"):
                argv = as_list(c.body.get(field_name))
                for i, hit in judge_args(argv):
                    arg = str(argv[i])
                    yield pod.finding(
                        SB103,
                        evidence=pod.at((*c.path, field_name, i), redact(arg)),
                        message=(
                            f"container '{c.name}' has a literal credential in "
                            f"{field_name}[{i}] {_why(hit)}"
                        ),
                        severity=hit.severity,
                    )
    for cm in ctx.of_kind("ConfigMap"):
        data = as_dict(cm.body.get("data"))
        for key in sorted(data):
            value = data[key]
            if not isinstance(value, str):
                continue
            hit = judge(str(key), value) or judge_text(value)
            if hit:
                yield SB104.finding(
                    evidence=evidence_at(cm, ("data", str(key)), redact(value)),
                    message=f"ConfigMap key '{key}' holds a literal credential {_why(hit)}",
                    severity=hit.severity,
                )
