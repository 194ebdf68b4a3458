#!/usr/bin/env bash
# Install the Debian packages actinia needs (GRASS, GDAL, tools; curl and jq
# for the README examples).
# Idempotent: skips apt entirely when every package is already present.
set -euo pipefail

APT_PACKAGES=(
  grass-core gdal-bin python3-gdal libgdal-dev rsync zip unzip wget
  libmagic1 file proj-bin ca-certificates curl jq
)
# grass-gui is needed (without recommends) for actinia-module-plugin's
# g.search.modules, which reads gui/wxpython/xml/module_items.xml.
GUI_PACKAGES=(grass-gui)

missing=()
for pkg in "${APT_PACKAGES[@]}" "${GUI_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null
apt-get install -y -qq --no-install-recommends "${GUI_PACKAGES[@]}" >/dev/null
