"""SB501-SB506: container and pod settings that turn a compromised app into a stolen node.

Each matters here because a secret-delivery approach is only as strong as the
container holding the secrets: root, privileges or host access reach other pods'
mounted secrets, the kubelet's credentials and the node's managed identity.

SB501 (high) ``privileged: true``.
SB502 (medium) ``allowPrivilegeEscalation`` not set to false.
SB503 (medium) may run as root: effective ``runAsNonRoot`` (container over pod) not
true and no non-zero ``runAsUser``; ``runAsUser: 0`` is always flagged.
SB504 (low) capabilities not dropped (no ``drop: [ALL]``); medium when it adds
SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE, DAC_READ_SEARCH, NET_RAW or ALL.
SB505 (medium) a ``hostPath`` volume (high when it is ``/``, ``/etc``, ``/var/lib/kubelet``,
``/var/run`` or the container runtime's socket).
SB506 (medium) ``hostNetwork`` (reaches the node's IMDS endpoint and its identity),
``hostPID`` or ``hostIPC``.

Flagged example::

    containers:
      - name: app
        securityContext: {privileged: true}     # SB501, SB503, SB504
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from secretsboot.audit.findings._base import Container, Context, PodView, Rule, as_dict, as_list
from secretsboot.audit.model import Finding, Severity

SB501 = Rule(
    id="SB501",
    name="privileged-container",
    title="Privileged container",
    severity=Severity.HIGH,
    description=(
        "A privileged container has every capability and the host's devices: it can read "
        "other pods' mounted secrets and the node's credentials."
    ),
    fix="Remove privileged: true; grant only the capabilities the program needs.",
)
SB502 = Rule(
    id="SB502",
    name="privilege-escalation-allowed",
    title="allowPrivilegeEscalation not disabled",
    severity=Severity.MEDIUM,
    description="Without allowPrivilegeEscalation: false a process can gain more privileges "
    "than its parent (setuid binaries, file capabilities).",
    fix="Set securityContext.allowPrivilegeEscalation: false on every container.",
)
SB503 = Rule(
    id="SB503",
    name="runs-as-root",
    title="Container may run as root",
    severity=Severity.MEDIUM,
    description="Root in the container owns every file mounted into it, secrets included, and "
    "is one kernel bug away from root on the node.",
    fix="Set runAsNonRoot: true and a non-zero runAsUser (pod or container securityContext).",
)
SB504 = Rule(
    id="SB504",
    name="capabilities-not-dropped",
    title="Linux capabilities not dropped",
    severity=Severity.LOW,
    description="The container keeps the runtime's default capabilities (or adds dangerous ones).",
    fix="Set securityContext.capabilities.drop: [ALL] and add back only what is needed.",
)
SB505 = Rule(
    id="SB505",
    name="hostpath-volume",
    title="hostPath volume",
    severity=Severity.MEDIUM,
    description="A hostPath volume exposes the node's file system: other pods' secrets, the "
    "kubelet's credentials, the container runtime.",
    fix="Use an emptyDir, a CSI volume or a projected volume instead of hostPath.",
)
SB506 = Rule(
    id="SB506",
    name="host-namespaces",
    title="Pod shares the host's network, PID or IPC namespace",
    severity=Severity.MEDIUM,
    description="hostNetwork lets the pod call the node's IMDS endpoint as the node's managed "
    "identity and bypass network policy; hostPID/hostIPC expose other processes.",
    fix="Remove hostNetwork, hostPID and hostIPC unless the pod is a node agent.",
)

RULES = (SB501, SB502, SB503, SB504, SB505, SB506)

_DANGEROUS_CAPS = frozenset(
    {"ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "DAC_READ_SEARCH", "NET_RAW"}
)
_SENSITIVE_HOST_PATHS = ("/", "/etc", "/var/lib/kubelet", "/var/run", "/run", "/proc")
_RUNTIME_SOCKETS = ("docker.sock", "containerd.sock", "crio.sock")


def _sensitive(path: str) -> bool:
    clean = path.rstrip("/") or "/"
    return clean in _SENSITIVE_HOST_PATHS or clean.endswith(_RUNTIME_SOCKETS)


def _container(pod: PodView, c: Container, pod_sc: dict[str, Any]) -> Iterator[Finding]:
    """SB501-SB504 of one container."""
    sc = c.security_context
    sc_path = (*c.path, "securityContext")
    who = f"container '{c.name}'"
    if sc.get("privileged") is True:
        yield pod.finding(
            SB501,
            evidence=pod.at((*sc_path, "privileged")),
            message=f"{who} is privileged",
        )
    if sc.get("allowPrivilegeEscalation") is not False:
        yield pod.finding(
            SB502,
            evidence=pod.at((*sc_path, "allowPrivilegeEscalation") if sc else c.path),
            message=f"{who} does not set allowPrivilegeEscalation: false",
        )
    user = sc.get("runAsUser", pod_sc.get("runAsUser"))
    non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
    if user == 0:
        where = sc_path if "runAsUser" in sc else (*pod.spec_path, "securityContext")
        yield pod.finding(
            SB503,
            evidence=pod.at((*where, "runAsUser")),
            message=f"{who} runs as UID 0",
        )
    elif non_root is not True and not (isinstance(user, int) and user > 0):
        yield pod.finding(
            SB503,
            evidence=pod.at(sc_path if sc else c.path),
            message=f"{who} sets neither runAsNonRoot: true nor a non-zero runAsUser",
        )
    caps = as_dict(sc.get("capabilities"))
    added = sorted({str(a).upper() for a in as_list(caps.get("add"))} & _DANGEROUS_CAPS)
    dropped = {str(d).upper() for d in as_list(caps.get("drop"))}
    if added:
        yield pod.finding(
            SB504,
            evidence=pod.at((*sc_path, "capabilities", "add")),
            message=f"{who} adds capabilities {', '.join(added)}",
            severity=Severity.MEDIUM,
        )
    elif "ALL" not in dropped:
        yield pod.finding(
            SB504,
            evidence=pod.at((*sc_path, "capabilities") if caps else (sc_path if sc else c.path)),
            message=f"{who} does not drop ALL capabilities",
        )


def detect(ctx: Context) -> Iterator[Finding]:
    for pod in ctx.pods:
        pod_sc = as_dict(pod.spec.get("securityContext"))
        for c in pod.containers():
            yield from _container(pod, c, pod_sc)
        for path, vol in pod.volumes():
            host = as_dict(vol.get("hostPath"))
            if host:
                host_path = str(host.get("path") or "")
                yield pod.finding(
                    SB505,
                    evidence=pod.at((*path, "hostPath"), host_path),
                    message=f"volume '{vol.get('name') or '?'}' mounts host path '{host_path}'",
                    severity=Severity.HIGH if _sensitive(host_path) else None,
                )
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.spec.get(key) is True:
                yield pod.finding(
                    SB506,
                    evidence=pod.at((*pod.spec_path, key)),
                    message=f"pod sets {key}: true",
                )
