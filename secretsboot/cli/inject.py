"""``secretsboot inject -f SPEC [--service NAME] [--out FILE] [-o yaml|json] FILE... | -``.

The spec is ``-f/--file`` as everywhere; ``-o/--output`` is the format of the
printed manifests; ``--out FILE`` writes them to a file (atomically) and says
where on stderr; ``-q`` leaves only errors on stderr.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from secretsboot._fs import atomic_write_text
from secretsboot.cli import options
from secretsboot.errors import BadInputError

_YAML_SUFFIXES = (".yaml", ".yml", ".json")


def _read_inputs(files: list[str]) -> list[tuple[str, str]]:
    """(source name, text) for each file, each YAML file of a folder, or stdin for ``-``."""
    out: list[tuple[str, str]] = []
    for name in files:
        if name == "-":
            out.append(("<stdin>", sys.stdin.read()))
            continue
        path = Path(name)
        if path.is_dir():
            members = sorted(p for p in path.rglob("*") if p.suffix in _YAML_SUFFIXES)
            if not members:
                raise BadInputError(f"{path}: no .yaml, .yml or .json files", hint="check the path")
        else:
            members = [path]
        for member in members:
            try:
                out.append((str(member), member.read_text(encoding="utf-8")))
            except FileNotFoundError:
                raise BadInputError(f"{member}: no such file", hint="check the path") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise BadInputError(
                    f"{member}: cannot read ({type(exc).__name__})", hint="pass UTF-8 YAML"
                ) from None
    return out


class ManifestFormat(StrEnum):
    YAML = "yaml"
    JSON = "json"


def register(app: typer.Typer) -> None:
    @app.command("inject")
    def inject(
        files: Annotated[
            list[str],
            typer.Argument(help="Manifest files or folders; '-' reads stdin.", show_default=False),
        ],
        spec_file: Annotated[
            Path, typer.Option("--file", "-f", help="The spec (secretsboot.yaml).")
        ],
        service: Annotated[
            str | None,
            typer.Option(
                "--service",
                "-s",
                help="Inject every workload for this service (unless annotated for another).",
            ),
        ] = None,
        with_config: Annotated[
            bool,
            typer.Option(
                "--with-config", help="Also print each injected service's ConfigMap (fetch.yaml)."
            ),
        ] = False,
        image: Annotated[
            str | None,
            typer.Option("--image", help="Init-container image (default: this version's)."),
        ] = None,
        output: Annotated[
            ManifestFormat,
            typer.Option("--output", "-o", help="Format: a YAML stream, or one JSON List."),
        ] = ManifestFormat.YAML,
        out: Annotated[
            Path | None,
            typer.Option("--out", help="Write the manifests to this file instead of stdout."),
        ] = None,
        refresh: Annotated[
            str | None,
            typer.Option(
                "--refresh",
                metavar="INTERVAL",
                help="Keep the secrets fresh: the fetch container becomes a native sidecar "
                "re-checking every INTERVAL (Kubernetes >= 1.29).",
            ),
        ] = None,
        refresh_sidecar: Annotated[
            str,
            typer.Option(
                "--refresh-sidecar",
                help="native (restartPolicy: Always) or container (older clusters; not for Jobs).",
            ),
        ] = "native",
    ) -> None:
        """Add the secretsboot init container to matching workloads; print the manifests.

        A workload matches a service by --service, by the annotation
        secretsboot.dev/service, or by having the service's name. Other objects are
        printed unchanged. Injecting twice gives the same output as once.
        """
        from secretsboot.inject import (
            DEFAULT_IMAGE,
            dump_documents,
            dump_json_list,
            inject_documents,
        )
        from secretsboot.inject import load_documents as load
        from secretsboot.spec import load_spec

        spec = load_spec(spec_file)
        docs = []
        for source, text in _read_inputs(files):
            docs.extend(load(text, source))
        result = inject_documents(
            docs, spec, service=service, image=image or DEFAULT_IMAGE, with_config=with_config
        )
        dump = dump_json_list if output is ManifestFormat.JSON else dump_documents
        if refresh is not None:
            from secretsboot.inject.refresh import refresh_documents

            refresh_documents(result.documents, refresh, refresh_sidecar)
        text = dump(result.documents)
        if out is not None:
            atomic_write_text(out, text)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
        if not options().quiet:
            for line in result.summary_lines():
                typer.echo(line, err=True)
            if out is not None:
                typer.echo(f"wrote {out}", err=True)
