"""SB901-SB903: rules raised by governance (:mod:`secretsboot.audit.policy`), not by manifests.

SB901 (high by default; the policy's ``severity`` can change it), a workload uses an
approach the policy does not allow in its namespace::

    # policy: namespaces: {payments: {allowedApproaches: [workload-identity, keyvault-csi]}}
    # Deployment payments/api uses k8s-secret-env  -> SB901

SB902 (info), a suppression whose ``expires`` date has passed: it no longer hides
its findings, and says so.

SB903 (info), an inline ``secretsboot.dev/suppress`` annotation that cannot be read
(expected ``"SB101,SB203: reason"``): it suppresses nothing.
"""

from __future__ import annotations

from secretsboot.audit.findings._base import Rule
from secretsboot.audit.model import Severity

SB901 = Rule(
    id="SB901",
    name="approach-not-allowed",
    title="Secret-delivery approach not allowed in this namespace",
    severity=Severity.HIGH,
    description="The audit policy lists the approaches allowed per namespace; this workload "
    "uses another one.",
    fix="Move the workload to an allowed approach (see the comparison table), or change the "
    "policy's allowedApproaches for the namespace.",
)
SB902 = Rule(
    id="SB902",
    name="suppression-expired",
    title="Suppression expired",
    severity=Severity.INFO,
    description="A suppression passed its expiry date and no longer applies.",
    fix="Fix the finding, or renew the suppression with a new expires date and reason.",
)
SB903 = Rule(
    id="SB903",
    name="suppression-unreadable",
    title="Inline suppression annotation cannot be read",
    severity=Severity.INFO,
    description="A secretsboot.dev/suppress annotation does not match 'SB101,SB203: reason'.",
    fix='Write it as secretsboot.dev/suppress: "SB101,SB203: why this is acceptable".',
)

RULES = (SB901, SB902, SB903)
