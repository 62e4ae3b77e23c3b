"""``inject --refresh INTERVAL``: the fetch container keeps the secrets fresh.

By default the injected ``secretsboot-fetch`` init container becomes a **native
sidecar** (``restartPolicy: Always``, Kubernetes >= 1.29): it writes the first set,
the kubelet starts the app only once its ``startupProbe`` sees ``/readyz`` (first
set written), then it refreshes every INTERVAL beside the app, and a Job still
completes (native sidecars are stopped after the app containers). Its probes
listen on the pod IP (``--health-host 0.0.0.0``: the kubelet probes the pod IP);
they carry no secret value.

``--refresh-sidecar container`` keeps the init container for the first write and
adds a regular container ``secretsboot-refresh`` for older clusters. Such a
container never exits, so a Job or CronJob would never complete: inject refuses
that form for them.

>>> spec = {"initContainers": [{"name": "secretsboot-fetch",
...         "args": ["fetch", "--config", "c", "--out", "o"]}], "containers": []}
>>> refresh_pod(spec, "5m")["initContainers"][0]["restartPolicy"]
'Always'
"""

from __future__ import annotations

import copy
from typing import Any

from secretsboot.errors import BadInputError
from secretsboot.inject.pod import INIT_CONTAINER, dict_at, list_at, upsert
from secretsboot.inject.workloads import WORKLOAD_KINDS
from secretsboot.interval import parse_interval

HEALTH_PORT = 8099
PORT_NAME = "sb-health"
SIDECAR = "secretsboot-refresh"
FORMS = ("native", "container")
#: a regular sidecar container never exits: these kinds would never complete
RUN_TO_COMPLETION = ("Job", "CronJob")


#: the kubelet probes the pod IP, so the probe port listens on every address of the pod
PROBE_HOST = "0.0.0.0"  # noqa: S104 - the pod's own network namespace; no secret is served


def refresh_args(interval: str) -> list[str]:
    return ["--refresh", interval, "--health-port", str(HEALTH_PORT), "--health-host", PROBE_HOST]


def _probes(container: dict[str, Any], *, startup: bool) -> None:
    container["ports"] = [{"name": PORT_NAME, "containerPort": HEALTH_PORT}]
    if startup:  # the app starts only once the first set is written
        container["startupProbe"] = {
            "httpGet": {"path": "/readyz", "port": PORT_NAME},
            "periodSeconds": 1,
            "failureThreshold": 120,
        }
    container["livenessProbe"] = {
        "httpGet": {"path": "/livez", "port": PORT_NAME},
        "periodSeconds": 30,
        "failureThreshold": 4,
    }


def refresh_pod(pod_spec: dict[str, Any], interval: str, form: str = "native") -> dict[str, Any]:
    """Turn the injected fetch init container of ``pod_spec`` into the refresh form, in
    place (and idempotently); return ``pod_spec``."""
    if form not in FORMS:
        raise BadInputError(f"--refresh-sidecar must be one of {', '.join(FORMS)}, not '{form}'")
    inits = list_at(pod_spec, "initContainers")
    fetch = next(
        (c for c in inits if isinstance(c, dict) and c.get("name") == INIT_CONTAINER), None
    )
    if fetch is None:
        return pod_spec  # a CSI service: the driver rotates
    base = list(fetch.get("args", []))
    if "--refresh" in base:
        base = base[: base.index("--refresh")]
    if form == "native":
        fetch["args"] = [*base, *refresh_args(interval)]
        fetch["restartPolicy"] = "Always"
        _probes(fetch, startup=True)
        return pod_spec
    for key in ("restartPolicy", "startupProbe", "livenessProbe", "ports"):
        fetch.pop(key, None)
    fetch["args"] = base
    sidecar = copy.deepcopy(fetch)
    sidecar["name"] = SIDECAR
    sidecar["args"] = [*base, *refresh_args(interval)]
    sidecar["resources"] = {
        "requests": {"cpu": "10m", "memory": "32Mi"},
        "limits": {"cpu": "200m", "memory": "64Mi"},
    }
    _probes(sidecar, startup=False)
    upsert(list_at(pod_spec, "containers"), sidecar)
    return pod_spec


def refresh_documents(documents: list[Any], interval: str, form: str = "native") -> None:
    """Apply :func:`refresh_pod` to every injected workload of ``documents``, in place.
    Refuses the container form for Jobs and CronJobs (they would never complete)."""
    parse_interval(interval)  # the very rule the sidecar applies
    for doc in documents:
        if not isinstance(doc, dict) or doc.get("kind") not in WORKLOAD_KINDS:
            continue
        node: Any = doc
        for part in WORKLOAD_KINDS[doc["kind"]]:
            node = dict_at(node, part)
        spec = dict_at(node, "spec")
        if form == "container" and doc["kind"] in RUN_TO_COMPLETION:
            name = dict_at(doc, "metadata").get("name")
            raise BadInputError(
                f"{doc['kind']}/{name}: a refresh container never exits, so the "
                f"{doc['kind']} would never complete",
                hint="use the native sidecar (--refresh-sidecar native, Kubernetes >= 1.29)",
            )
        refresh_pod(spec, interval, form)
