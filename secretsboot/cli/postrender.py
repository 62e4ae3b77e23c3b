"""``secretsboot-postrender``: ``secretsboot inject`` as a Helm post-renderer.

Helm hands the rendered release on stdin and installs what comes back on
stdout; a non-zero exit aborts the install or upgrade. This entry point reads
the whole stream, injects it, and writes the result in one piece only when
everything succeeded: on any error stdout stays empty and stderr carries one
line, ``secretsboot-postrender: error: ...``, with the exit code of
:mod:`secretsboot.errors`.

Where the spec comes from (arguments win over the environment)::

    -f/--file SPEC       or  SECRETSBOOT_SPEC=SPEC         the spec (required)
    -s/--service NAME    or  SECRETSBOOT_SERVICE=NAME      force one service
    --image IMAGE        or  SECRETSBOOT_IMAGE=IMAGE       init-container image
    --with-config        or  SECRETSBOOT_WITH_CONFIG=true  also emit the ConfigMaps

Helm 3: ``helm install --post-renderer secretsboot-postrender
--post-renderer-args -f --post-renderer-args secretsboot.yaml ...``.
Helm 4: install ``helm-plugin/`` (``helm plugin install helm-plugin``), then
``helm install --post-renderer secretsboot ...``; the plugin runs this same
program with the same arguments and environment.

The output is a pure function of the input and the spec, and injecting an
injected stream changes nothing, so every ``helm upgrade`` renders the same
objects and Helm sees no drift.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn, TextIO

from secretsboot.errors import BadInputError, ExitCode, SecretsbootError, exit_code_for

PROG = "secretsboot-postrender"
_TRUE = frozenset({"1", "true", "yes", "on"})


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BadInputError(message, hint=f"see {PROG} --help")


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Inject secretsboot into a Helm release: manifests on stdin, result on stdout.",
    )
    parser.add_argument(
        "-f", "--file", default=env.get("SECRETSBOOT_SPEC"), help="the spec (or SECRETSBOOT_SPEC)"
    )
    parser.add_argument(
        "-s",
        "--service",
        default=env.get("SECRETSBOOT_SERVICE") or None,
        help="inject every workload for this service (or SECRETSBOOT_SERVICE)",
    )
    parser.add_argument(
        "--image",
        default=env.get("SECRETSBOOT_IMAGE") or None,
        help="init-container image (or SECRETSBOOT_IMAGE; default: this version's)",
    )
    parser.add_argument(
        "--with-config",
        action="store_true",
        default=env.get("SECRETSBOOT_WITH_CONFIG", "").lower() in _TRUE,
        help="also emit each injected service's ConfigMap (or SECRETSBOOT_WITH_CONFIG=true)",
    )
    return parser


def postrender(argv: Sequence[str], stdin: TextIO, env: Mapping[str, str]) -> str:
    """The injected stream for the manifests on ``stdin``; raises on any problem."""
    from secretsboot.inject import DEFAULT_IMAGE, inject_text
    from secretsboot.spec import load_spec

    args = _parser(env).parse_args(list(argv))
    if not args.file:
        raise BadInputError(
            "no spec given",
            hint="pass --post-renderer-args -f --post-renderer-args SPEC, or set SECRETSBOOT_SPEC",
        )
    spec = load_spec(args.file)
    text, _ = inject_text(
        stdin.read(),
        spec,
        source="<helm release>",
        service=args.service,
        image=args.image or DEFAULT_IMAGE,
        with_config=args.with_config,
    )
    return text


def main(
    argv: Sequence[str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run the post-renderer; return the exit code (0, or the error's documented code)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = sys.argv[1:] if argv is None else argv
    if {"-h", "--help"} & set(args):
        _parser({}).print_help(stdout)
        return 0
    try:
        text = postrender(args, stdin or sys.stdin, os.environ if env is None else env)
    except SecretsbootError as exc:
        lines = str(exc).splitlines() or [type(exc).__name__]
        more = f" (and {len(lines) - 1} more: see `secretsboot spec validate`)" if lines[1:] else ""
        stderr.write(f"{PROG}: error: {lines[0]}{more}\n")
        return exit_code_for(exc)
    except Exception as exc:  # a bug: one line, never a half-written release
        stderr.write(f"{PROG}: internal error: {type(exc).__name__} (please report it)\n")
        return int(ExitCode.INTERNAL)
    stdout.write(text)
    stdout.flush()
    return 0


def run() -> None:
    """The console script."""
    sys.exit(main())


if __name__ == "__main__":
    run()
