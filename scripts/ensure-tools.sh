#!/usr/bin/env bash
# Host tools, from Debian's packages when missing: debootstrap (the offline builder's base
# image), chromium (the report's end-to-end test opens report.html in it, headless) and fuse3
# (fusermount3 and libfuse3, which faultfs mounts with through mfusepy).
# Go and Rust come with the machine (see docs/operations.md).
set -euo pipefail
want=("$@")
if [ ${#want[@]} -eq 0 ]; then
    command -v debootstrap >/dev/null 2>&1 || want+=(debootstrap)
    command -v chromium >/dev/null 2>&1 || want+=(chromium)
    command -v fusermount3 >/dev/null 2>&1 || want+=(fuse3)
fi
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "tools: missing ${want[*]}; install them (Debian: sudo apt-get install ${want[*]})" >&2
    exit 1
fi
echo "tools: installing ${want[*]} from Debian"
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null
fi
