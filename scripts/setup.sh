#!/usr/bin/env bash
# One-time set-up on a fresh Debian/Ubuntu machine: system packages (when missing), a virtualenv
# and the project in it. Safe to run again: it only does what is missing.
set -euo pipefail
VENV="${1:-.venv}"
cd "$(dirname "$0")/.."

APT_PACKAGES=(mosquitto mosquitto-clients espeak-ng sox alsa-utils xvfb xauth libgl1 libgl1-mesa-dri libegl1 libegl-mesa0
              libmtdev1 fonts-noto-core fonts-dejavu-core chromium chromium-driver postgresql prometheus iproute2
              gammu gammu-smsd)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The region tests use the machine's PostgreSQL (a scratch database each); start it when it is down.
if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ] && ! pg_isready -q 2>/dev/null; then
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || echo "==> could not start PostgreSQL $version (the region tests start it again)"
  done
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Luot needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
echo "==> installing Luot and its test tools into $VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[test]'
echo "==> set-up done"
