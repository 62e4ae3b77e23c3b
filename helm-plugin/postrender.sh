#!/bin/sh
# Helm 4 post-renderer plugin entry: the rendered release on stdin, injected on stdout.
# Helm 4.1 discards a plugin's stderr, so a failed render would abort with only
# "plugin exited with error". Our one-line error goes to Helm's own stderr instead
# (its fd 2, reached through /proc) where that exists; stdout is never touched.
err="/proc/$PPID/fd/2"
if [ -w "$err" ]; then
    exec secretsboot-postrender "$@" 2>>"$err"
fi
exec secretsboot-postrender "$@"
