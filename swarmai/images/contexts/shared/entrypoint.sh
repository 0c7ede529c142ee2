#!/bin/sh
# swarmai: entrypoint of the single-binary images (traefik, weed).
#
# Called as `entrypoint.sh PROGRAM [ARGS...]`.  Behaves like the official
# images: `traefik --configFile=...` or `sh` run as given, while bare flags or
# subcommands (`--configFile=...`, `version`) are handed to PROGRAM.
set -eu
program=$1
shift
if [ $# -eq 0 ] || [ "${1#-}" != "$1" ] || ! command -v "$1" >/dev/null 2>&1; then
  set -- "$program" "$@"
fi
exec "$@"
