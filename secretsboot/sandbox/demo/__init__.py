"""``secretsboot demo``: the whole story on a local sandbox, in one command.

:mod:`.core` drives the steps (sandbox, seed, provision, inject, audit),
:mod:`.pods` runs each pod's init container (fetch, fallback, denial), and
:mod:`.base` holds the records and where the example spec ships (package data,
so the demo runs from an installed wheel).
"""

from __future__ import annotations

from secretsboot.sandbox.demo.base import DemoResult, DemoStepFailed, find_example
from secretsboot.sandbox.demo.core import Demo, app_deployment

__all__ = ["Demo", "DemoResult", "DemoStepFailed", "app_deployment", "find_example"]
