#!/bin/sh
# Runs a program of the newest PostgreSQL that Debian's `postgresql` package installed: its programs
# live off PATH, in /usr/lib/postgresql/<version>/bin. Used by the example backends' [[service]].
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ]; then
    echo "PostgreSQL is not installed: apt-get install postgresql" >&2
    exit 127
fi
program=$1
shift
exec "$bin/$program" "$@"
