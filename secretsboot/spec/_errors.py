"""Spec problems as ``FILE:LINE FIELD: problem; fix``, all of them in one pass.

:func:`collect` turns pydantic's validation errors into :class:`SpecError` items
located by line; when fields failed (so the model's cross-reference check never
ran), it parses the parts that are valid on their own (:func:`lenient`) and runs
the cross-reference checks on them too.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from secretsboot import _yaml
from secretsboot.errors import SpecError, SpecErrors
from secretsboot.spec import (
    API_VERSION,
    KIND,
    AzureSpec,
    KubernetesSpec,
    SecretSpec,
    ServiceSpec,
    Spec,
    VaultSpec,
)
from secretsboot.spec._checks import (
    Entry,
    FieldError,
    FieldErrors,
    Loc,
    cross_reference_errors,
    suggest,
)


def format_path(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_for(lines: _yaml.LineMap, path: Loc) -> int | None:
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        path = path[:-1]


def _model_at(path: Loc) -> type[BaseModel] | None:
    model: Any = Spec
    for part in path:
        if isinstance(part, int):
            continue
        fields = {(f.alias or n): f for n, f in model.model_fields.items()}
        field = fields.get(part)
        if field is None:
            return None
        model = _unwrap(field.annotation)
        if model is None:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in args or ():
        found = _unwrap(arg)
        if found is not None:
            return found
    return None


def _from_field(err: FieldError, base: Loc, file: str, lines: _yaml.LineMap) -> SpecError:
    path = base + err.path
    return SpecError(
        err.message,
        file=file,
        line=_line_for(lines, path),
        field=format_path(path),
        hint=err.hint,
    )


def _from_pydantic(err: Any, file: str, lines: _yaml.LineMap) -> SpecError:
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        known = sorted((f.alias or n) for n, f in parent.model_fields.items()) if parent else []
        name = str(loc[-1])
        return SpecError(
            f"unknown field '{name}'",
            file=file,
            line=_line_for(lines, loc),
            field=format_path(loc),
            hint=suggest(
                name, known, f"known fields: {', '.join(known)}" if known else "remove it"
            ),
        )
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    hint = None
    if kind == "missing":
        message = "required field is missing"
        hint = "add it"
    elif kind == "literal_error" and loc and loc[-1] == "apiVersion":
        hint = f"set apiVersion: {API_VERSION}"
    elif kind == "literal_error" and loc and loc[-1] == "kind":
        hint = f"set kind: {KIND}"
    return SpecError(
        message, file=file, line=_line_for(lines, loc), field=format_path(loc), hint=hint
    )


def collect(
    exc: ValidationError, data: dict[str, Any], file: str, lines: _yaml.LineMap
) -> SpecErrors:
    """Every problem of a spec that failed validation: fields, URIs and cross references."""
    errors: list[SpecError] = []
    cross_ran = False
    for err in exc.errors(include_url=False):
        original = (err.get("ctx") or {}).get("error")
        loc = tuple(err["loc"])
        if isinstance(original, FieldErrors):
            cross_ran = True
            errors.extend(_from_field(e, loc, file, lines) for e in original.errors)
        elif isinstance(original, FieldError):
            errors.append(_from_field(original, loc, file, lines))
        else:
            errors.append(_from_pydantic(err, file, lines))
    if not cross_ran:
        errors.extend(_from_field(e, (), file, lines) for e in lenient_cross_errors(data))
    unique: dict[tuple[str | None, str], SpecError] = {}
    for e in errors:
        unique.setdefault((e.field, e.message), e)
    ordered = sorted(unique.values(), key=lambda e: (e.line or 0, e.field or ""))
    return SpecErrors(ordered)


def lenient_cross_errors(data: dict[str, Any]) -> list[FieldError]:
    """The cross-reference checks over the parts of ``data`` that parse on their own."""
    azure, azure_known = _section(AzureSpec, data.get("azure"))
    vault, vault_known = _section(VaultSpec, data.get("vault"))
    kube, _ = _section(KubernetesSpec, data.get("kubernetes") or {})
    raw_services = data.get("services")
    services: list[Entry] = []
    if isinstance(raw_services, list):
        for si, raw in enumerate(raw_services):
            entry = _service(si, raw)
            if entry is not None:
                services.append(entry)
    return cross_reference_errors(
        azure if isinstance(azure, AzureSpec) else None,
        vault if isinstance(vault, VaultSpec) else None,
        kube if isinstance(kube, KubernetesSpec) else KubernetesSpec(),
        services,
        azure_known=azure_known,
        vault_known=vault_known,
    )


def _section(cls: type[BaseModel], raw: Any) -> tuple[BaseModel | None, bool]:
    """(the section, whether it is known): None and known when absent."""
    if raw is None:
        return None, True
    model = _without_bad_fields(cls, raw)
    return model, model is not None


def _without_bad_fields(cls: type[BaseModel], raw: Any) -> BaseModel | None:
    """``raw`` as ``cls`` with each field that fails dropped (so its default applies)."""
    if not isinstance(raw, dict):
        return None
    data = copy.copy(raw)
    for _ in range(3):
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            bad = {err["loc"][0] for err in exc.errors() if err["loc"]}
            if not bad & set(data):
                return None
            for name in bad:
                data.pop(name, None)
    return None


def _service(si: int, raw: Any) -> Entry | None:
    """A service with its secrets that parse (and where each is in the file)."""
    if not isinstance(raw, dict):
        return None
    data = dict(raw)
    kept: list[int] = []
    secrets: list[SecretSpec] = []
    raw_secrets = data.get("secrets")
    for ci, item in enumerate(raw_secrets if isinstance(raw_secrets, list) else []):
        secret = _without_bad_fields(SecretSpec, item)
        if isinstance(secret, SecretSpec):
            kept.append(ci)
            secrets.append(secret)
    data["secrets"] = []
    svc = _without_bad_fields(ServiceSpec, data)
    if not isinstance(svc, ServiceSpec):
        return None
    partial = _fails(ServiceSpec, data)
    return si, svc.model_copy(update={"secrets": secrets}), kept, partial


def _fails(cls: type[BaseModel], data: dict[str, Any]) -> bool:
    try:
        cls.model_validate(data)
    except ValidationError:
        return True
    return False
