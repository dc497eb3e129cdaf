#!/usr/bin/env bash
# Installs the Debian packages the integration tests drive, when they are missing.
# Without root (and without sudo) it says what is missing and carries on: those tests
# then skip locally, and fail under CI=true, where a missing tool is a broken setup.
set -euo pipefail

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# Chromium only recommends a font; the dashboard screenshot needs one to show text.
[ -d /usr/share/fonts/truetype/liberation ] || need+=(fonts-liberation)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
[ -x /usr/bin/prometheus-node-exporter ] || need+=(prometheus-node-exporter)
command -v tmux >/dev/null 2>&1 || need+=(tmux)  # the terminal viewer's end-to-end test

if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo="sudo -n"
    else
        echo "install-system-deps: missing ${need[*]} and not root; integration tests will skip" >&2
        exit 0
    fi
fi
echo "install-system-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive

# The Debian packages start their services on install; the tests start their own.
# A policy-rc.d that forbids every start keeps the install from starting anything
# (invoke-rc.d and deb-systemd-invoke both ask it); one that is already there is left
# alone. Nothing that ran before is ever stopped: only a service the install itself
# started, if a package started one anyway.
services=(prometheus prometheus-node-exporter nginx)
running() {
    systemctl is-active --quiet "$1" >/dev/null 2>&1 || service "$1" status >/dev/null 2>&1
}
before=" "
for svc in "${services[@]}"; do
    if running "$svc"; then before+="$svc "; fi
done
policy=${POLICY_RC_D:-/usr/sbin/policy-rc.d}
if [ ! -e "$policy" ] && [ ! -L "$policy" ]; then
    trap '$sudo rm -f "$policy"' EXIT
    printf '#!/bin/sh\n# install-system-deps: no service starts during this install\nexit 101\n' |
        $sudo tee "$policy" >/dev/null
    $sudo chmod 0755 "$policy"
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
for svc in "${services[@]}"; do
    if [[ "$before" != *" $svc "* ]] && running "$svc"; then
        echo "install-system-deps: stopping $svc, which the install started" >&2
        $sudo systemctl stop "$svc" >/dev/null 2>&1 || $sudo service "$svc" stop >/dev/null 2>&1 || true
    fi
done
