"""``secretsboot plan`` / ``provision``: spec -> desired state -> checks -> plan (diff) -> apply.

- :mod:`.desired`: the spec as the objects each system should hold (pure), built per
  system in :mod:`.desired_azure`, :mod:`.desired_kube`, :mod:`.desired_vault`; what
  each secret store is granted is found in ``desired.GRANTS`` by its URI scheme
- :mod:`.names`: deterministic names and resource ids
- :mod:`.model`: resource keys, changes (create, update, delete, release), the plan
- :mod:`.ownership`: the created/adopted record on each object, and releasing it
- :mod:`.azure` (a package, one module per resource family), :mod:`.kubernetes`,
  :mod:`.vault`: one backend per system (batched reads that also check every reference
  the spec makes, one write per change, SDK errors translated once)
- :mod:`.apply`: observation, the reference and permission checks, dependency order,
  concurrency, progress
- :mod:`.render`: the plan as text and JSON; :mod:`.sync`: ``--sync-fallbacks``
- :mod:`.actas`: a service's tokens and environment, for ``provision --verify``
"""
