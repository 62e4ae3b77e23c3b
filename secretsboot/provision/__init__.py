"""``secretsboot plan`` / ``provision``: spec -> desired state -> plan (diff) -> apply.

- :mod:`.desired`: the spec as the objects each system should hold (pure)
- :mod:`.model`: resource keys, changes, field diffs, the plan
- :mod:`.azure`, :mod:`.kubernetes`, :mod:`.vault`: one backend per system (batched
  reads, one write per change, SDK errors translated once)
- :mod:`.apply`: preflight, dependency order, concurrency, progress
- :mod:`.render`: the plan as text and JSON; :mod:`.sync`: ``--sync-fallbacks``
"""
