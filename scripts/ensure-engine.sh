#!/usr/bin/env bash
# Make sure a Docker engine answers. An engine that already answers (a laptop,
# a CI runner) is used as it is; on a Debian machine with none, install
# Debian's docker.io and start dockerd in the background.
set -euo pipefail

CACHE="${SOLAR_CHAOS_CACHE:-$HOME/.cache/solar-chaos}"
LOG="${SOLAR_CHAOS_DOCKERD_LOG:-$CACHE/dockerd.log}"
# Small /24 networks from a /16: a run uses one network per node, and
# Docker's default pools hold only about 30 networks.
POOL="${SOLAR_CHAOS_ADDRESS_POOL:-base=10.213.0.0/16,size=24}"

say() { echo "engine: $*"; }

if docker info >/dev/null 2>&1; then
    say "$(docker info --format 'Docker {{.ServerVersion}}, {{.Driver}}') answers; using it"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        say "no Docker engine answers and this is not a Debian machine: install Docker, then re-run" >&2
        exit 1
    fi
    if [ "$(id -u)" != 0 ]; then
        say "no Docker engine; installing docker.io needs root: sudo $0" >&2
        exit 1
    fi
    say "installing Debian's docker.io (with iptables, containerd, runc)"
    start=$(date +%s)
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io iptables >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io iptables >/dev/null
    fi
    say "installed in $(( $(date +%s) - start )) s"
fi

# A dockerd killed with its session leaves its pid file, and a new one refuses to start.
for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
    pid=$(cat "$pidfile" 2>/dev/null || true)
    # A zombie (state Z) still answers kill -0, so read its state instead.
    if [ -f "$pidfile" ] && ! grep -qs '^State:[[:space:]]*[^Z]' "/proc/$pid/status"; then
        rm -f "$pidfile"
    fi
done

mkdir -p "$(dirname "$LOG")"
say "starting dockerd (log: $LOG)"
start=$(date +%s%N)
# In a session of its own, so an engine started from a test (one restarts it) does not die with
# that test's process group; and holding none of our descriptors beyond 0-2: started under
# `flock LOCK make test`, it kept the lock's descriptor and held the lock as long as it ran.
(
    for fd in $(ls "/proc/$BASHPID/fd"); do
        [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done
    exec setsid nohup dockerd --default-address-pool "$POOL" >>"$LOG" 2>&1 </dev/null
) &
for _ in $(seq 1 300); do
    if docker info >/dev/null 2>&1; then
        ms=$(( ($(date +%s%N) - start) / 1000000 ))
        say "$(docker info --format 'Docker {{.ServerVersion}}, {{.Driver}}') answers after ${ms} ms"
        exit 0
    fi
    sleep 0.1
done
say "dockerd did not answer within 30 s; last lines of $LOG:" >&2
tail -n 20 "$LOG" >&2
exit 1
