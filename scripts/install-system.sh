#!/usr/bin/env bash
# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
# Install the Debian packages actinia needs (GRASS, GDAL, tools) on Debian 12
# (bookworm) or Debian 13 (trixie); any other system stops with a message.
# curl and jq are for the README's examples.
# Idempotent: skips apt entirely when every package is already present
# (installed under its own name or provided by an installed package).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/debian-release.sh"
debian_release

# g++ builds GDAL's Python bindings in the venv (pip "GDAL==$(gdal-config
# --version)": a wheel exists only for some versions).
# e2fsprogs (mkfs.ext4): the tests' ext4 with 1 s timestamps; Debian 13
# no longer installs it by default.
APT_PACKAGES=(
  grass-core gdal-bin python3-gdal libgdal-dev g++ rsync zip unzip wget
  file proj-bin ca-certificates curl jq e2fsprogs "${RELEASE_PACKAGES[@]}"
)
# grass-gui is needed (without recommends) for actinia-module-plugin's
# g.search.modules, which reads gui/wxpython/xml/module_items.xml.
GUI_PACKAGES=(grass-gui)

# Names of installed packages and of the virtual packages they provide.
installed_names() {
  dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Provides}\n' 2>/dev/null |
    awk -F'|' '$1 ~ /^ii/ { print $2; n = split($3, p, /, */);
                for (i = 1; i <= n; i++) { sub(/ .*/, "", p[i]); print p[i] } }'
}

have="$(installed_names | sort -u)"
missing=()
for pkg in "${APT_PACKAGES[@]}" "${GUI_PACKAGES[@]}"; do
  grep -qxF "$pkg" <<<"$have" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages ($DEBIAN_CODENAME): all present"
  exit 0
fi
echo "system packages ($DEBIAN_CODENAME): installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null
apt-get install -y -qq --no-install-recommends "${GUI_PACKAGES[@]}" >/dev/null
