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
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The Debian packages start services on install; the tests start their own.
for svc in prometheus prometheus-node-exporter nginx; do
    $sudo systemctl stop "$svc" >/dev/null 2>&1 || $sudo service "$svc" stop >/dev/null 2>&1 || true
done
