#!/bin/sh
# As the official image: protected mode off (the container network is the boundary; without it Redis refuses
# every client but localhost), the volume owned by redis, the server as user redis (PID 1).
set -eu
chown redis:redis /data
if [ "${1:-}" = redis-server ]; then
    shift
    set -- redis-server --protected-mode no "$@"
fi
exec setpriv --reuid=redis --regid=redis --init-groups "$@"
