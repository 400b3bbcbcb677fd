#!/usr/bin/env bash
# Make .venv with workshop_app installed (editable), plus the Debian packages it needs.
# Sourced by scripts/run.sh and scripts/test.sh; safe to run again (it only adds what's missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

EXTRA="${1:-}"   # "test" installs the test tools too
PY="${PYTHON:-python3}"

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if command -v dpkg-query >/dev/null 2>&1; then
  # venv for Python; Qt's xcb/EGL libraries and a font so the window draws text; mosquitto
  # for the cloud-link tests; poppler-utils to read back the PDF reports in tests.
  pkgs=(python3-venv libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4
        libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0
        libdbus-1-3 libfontconfig1 fonts-dejavu-core)
  [ "$EXTRA" = "test" ] && pkgs+=(mosquitto poppler-utils)
  apt_install "${pkgs[@]}" || echo "warning: could not install Debian packages (${pkgs[*]})" >&2
fi

stamp=".venv/.installed-${EXTRA:-app}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  if [ "$EXTRA" = "test" ]; then
    .venv/bin/python -m pip install -q -e ".[test]"
  else
    .venv/bin/python -m pip install -q -e .
  fi
  touch "$stamp"
fi
