"""``secretsboot audit``: load manifests -> resolve objects -> classify -> findings -> report.

The audit reads; it writes nothing anywhere but the report it is asked for.
"""
