"""SB301-SB303: the ServiceAccount a workload runs as, and its API token.

SB301 (low), the namespace's ``default`` ServiceAccount (``serviceAccountName``
unset or ``default``): every grant to it is shared with every other pod there.

SB302 (low), one ServiceAccount shared by several workloads: a federated credential
or a Vault role bound to it serves all of them, so least privilege is lost::

    # Deployment orders and Deployment billing both: serviceAccountName: shop

SB303 (low), a ServiceAccount token mounted into a workload that does not need the
Kubernetes API (no RoleBinding/ClusterRoleBinding in the input names its
ServiceAccount). Precedence: the pod's ``automountServiceAccountToken`` overrides
the ServiceAccount's; when neither sets it the token is mounted. Workload
identity's projected token (audience ``api://AzureADTokenExchange``) is a
different token and is not a finding.
"""

from __future__ import annotations

from collections.abc import Iterator

from secretsboot.audit.findings._base import Context, PodView, Rule, evidence_at
from secretsboot.audit.findings._rbac import service_account_bindings
from secretsboot.audit.model import Evidence, Finding, Severity

SB301 = Rule(
    id="SB301",
    name="default-serviceaccount",
    title="Workload runs as the default ServiceAccount",
    severity=Severity.LOW,
    description=(
        "The default ServiceAccount is shared by every pod of the namespace that names none: "
        "an identity, Vault role or RBAC grant given to it is given to all of them."
    ),
    fix="Create a dedicated ServiceAccount per workload and set serviceAccountName.",
)
SB302 = Rule(
    id="SB302",
    name="shared-serviceaccount",
    title="ServiceAccount shared by several workloads",
    severity=Severity.LOW,
    description=(
        "Several workloads run as one ServiceAccount, so its federated credentials, Vault "
        "roles and RBAC grants serve all of them: a compromise of one is a compromise of all."
    ),
    fix="Give each workload its own ServiceAccount (and its own identity and grants).",
)
SB303 = Rule(
    id="SB303",
    name="unneeded-token-automount",
    title="Kubernetes API token mounted into a workload that does not use the API",
    severity=Severity.LOW,
    description=(
        "A ServiceAccount token is mounted, yet nothing binds the ServiceAccount to any role: "
        "the token only helps an attacker who gets into the container."
    ),
    fix=(
        "Set automountServiceAccountToken: false on the pod spec (or the ServiceAccount). "
        "Workload identity keeps working: its projected token is mounted separately."
    ),
)

RULES = (SB301, SB302, SB303)


def _automount(ctx: Context, pod: PodView) -> tuple[bool, Evidence, str]:
    """Effective automount, where it was decided, and a note on why."""
    own = pod.spec.get("automountServiceAccountToken")
    if isinstance(own, bool):
        return own, pod.at((*pod.spec_path, "automountServiceAccountToken")), "the pod sets it"
    sa = ctx.service_account(pod)
    if sa is not None:
        from_sa = sa.body.get("automountServiceAccountToken")
        if isinstance(from_sa, bool):
            where = evidence_at(sa, ("automountServiceAccountToken",))
            return from_sa, where, f"ServiceAccount '{sa.name}' sets it"
    return True, pod.at(pod.spec_path), "neither the pod nor its ServiceAccount disables it"


def detect(ctx: Context) -> Iterator[Finding]:
    users = ctx.pod_facts()  # every workload's, not only the reported ones
    for pod in ctx.pods:
        sa_path = (*pod.spec_path, "serviceAccountName")
        if pod.service_account == "default":
            yield pod.finding(
                SB301,
                evidence=pod.at(sa_path if "serviceAccountName" in pod.spec else pod.spec_path),
                message="runs as the default ServiceAccount of its namespace",
            )
        else:
            sharing = users.sharing(pod.namespace, pod.service_account)
            if len(sharing) > 1:
                others = [ref for ref in sharing[:6] if ref != pod.ref][:5]
                more = len(sharing) - 1 - len(others)
                yield pod.finding(
                    SB302,
                    evidence=pod.at(sa_path, pod.service_account),
                    message=(
                        f"ServiceAccount '{pod.service_account}' is shared with "
                        + ", ".join(others)
                        + (f" and {more} more" if more > 0 else "")
                    ),
                )
        mounted, where, why = _automount(ctx, pod)
        if mounted and not service_account_bindings(ctx, pod.namespace, pod.service_account):
            yield pod.finding(
                SB303,
                evidence=where,
                message=(
                    f"API token of ServiceAccount '{pod.service_account}' is mounted ({why}) "
                    "but no RoleBinding or ClusterRoleBinding in the input grants it anything"
                ),
            )
