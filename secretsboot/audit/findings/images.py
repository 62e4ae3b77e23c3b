"""SB507-SB508: where container images come from.

SB507 (medium) an image outside the trusted registries. Off unless trusted
registries are configured (policy ``trustedRegistries`` or
``run_detectors(trusted_registries=...)``); an entry is a registry host
(``mcr.microsoft.com``), a host with a path prefix (``myacr.azurecr.io/team``) or a
glob (``*.azurecr.io``). Images without a registry are Docker Hub
(``docker.io``)::

    image: busybox:1.36          # docker.io/library/busybox, flagged when only
                                 # mcr.microsoft.com is trusted

SB508 (low) an image by mutable tag: ``:latest`` or no tag at all (a ``@sha256:``
digest is always fine)::

    image: nginx                 # flagged
    image: nginx:latest          # flagged
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator

from secretsboot.audit.findings._base import Context, Rule
from secretsboot.audit.model import Finding, Severity

SB507 = Rule(
    id="SB507",
    name="untrusted-registry",
    title="Image from outside the trusted registries",
    severity=Severity.MEDIUM,
    description="The image comes from a registry the policy does not trust; whatever runs in "
    "it receives the workload's secrets and identity.",
    fix="Mirror the image into a trusted registry (e.g. your ACR) and reference it from there, "
    "or add the registry to trustedRegistries.",
)
SB508 = Rule(
    id="SB508",
    name="mutable-image-tag",
    title="Image referenced by a mutable tag",
    severity=Severity.LOW,
    description=":latest (or no tag) can change under a running deployment: the code that "
    "receives the secrets is not the code that was reviewed.",
    fix="Pin a version tag, or better an immutable digest (image@sha256:...).",
)

RULES = (SB507, SB508)


def parse_image(image: str) -> tuple[str, str, str, str]:
    """(registry, repository, tag, digest) of an image reference.

    >>> parse_image("busybox")
    ('docker.io', 'library/busybox', '', '')
    >>> parse_image("mcr.microsoft.com/oss/nginx:1.25@sha256:abc")
    ('mcr.microsoft.com', 'oss/nginx', '1.25', 'sha256:abc')
    """
    rest, _, digest = image.partition("@")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = "docker.io", rest
    name, _, tag = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
    if registry == "docker.io" and "/" not in name:
        name = f"library/{name}"
    return registry, name, tag, digest


def trusted(image: str, registries: tuple[str, ...]) -> bool:
    registry, repository, _, _ = parse_image(image)
    full = f"{registry}/{repository}"
    for entry in registries:
        entry = entry.rstrip("/")
        if "/" in entry:
            if full == entry or full.startswith(entry + "/"):
                return True
        elif fnmatch.fnmatchcase(registry, entry):
            return True
    return False


def detect(ctx: Context) -> Iterator[Finding]:
    for pod in ctx.pods:
        for c in pod.containers():
            image = c.body.get("image")
            if not isinstance(image, str) or not image:
                continue
            path = (*c.path, "image")
            if ctx.trusted_registries and not trusted(image, ctx.trusted_registries):
                yield pod.finding(
                    SB507,
                    evidence=pod.at(path, image),
                    message=f"container '{c.name}' image '{image}' is from "
                    f"'{parse_image(image)[0]}', not a trusted registry",
                )
            _, _, tag, digest = parse_image(image)
            if not digest and tag in ("", "latest"):
                yield pod.finding(
                    SB508,
                    evidence=pod.at(path, image),
                    message=f"container '{c.name}' image '{image}' uses "
                    + ("the :latest tag" if tag else "no tag (:latest)"),
                )
