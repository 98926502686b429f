#!/bin/sh
# Where the host engine cannot grant --privileged (a capability missing from its bounding set: runc fails
# "unable to apply caps"), the harness starts this container with every capability it can have instead;
# /sys, /proc/sys and the container's cgroup (v1) mounts are then read-only, and dockerd needs them
# writable. A privileged container has them writable already: nothing here matches.
set -e
if grep -q ' /sys sysfs ro,' /proc/mounts; then mount -o remount,rw /sys; fi
for m in $(awk '($3 == "cgroup" || $2 == "/proc/sys") && $4 ~ /^ro,/ {print $2}' /proc/mounts); do
  mount -o remount,bind,rw "$m"
done
exec /usr/bin/tini -- /usr/sbin/dockerd "$@"
