# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
# Sourced by the install scripts: which Debian releases the project supports
# and what each ships. Sets DEBIAN_CODENAME and RELEASE_PACKAGES, or stops
# with a clear message on any other system.
#   Debian 12 (bookworm): GRASS 8.2.1, actinia URLs /api/v3/locations/...
#   Debian 13 (trixie):   GRASS 8.4.1, actinia URLs /api/v3/projects/...
# OS_RELEASE may point at another os-release file (tests, chroots).
SUPPORTED_RELEASES="Debian 12 (bookworm), Debian 13 (trixie)"

debian_release() {
  local file="${OS_RELEASE:-/etc/os-release}" id="" codename="" pretty=""
  if [ -r "$file" ]; then
    id="$(. "$file" && echo "${ID:-}")"
    codename="$(. "$file" && echo "${VERSION_CODENAME:-}")"
    pretty="$(. "$file" && echo "${PRETTY_NAME:-}")"
  fi
  case "$id:$codename" in
    debian:bookworm|debian:trixie) DEBIAN_CODENAME="$codename" ;;
    *)
      echo "error: unsupported system '${pretty:-unknown (no $file)}'." >&2
      echo "       actinia-resume-plugin's scripts support $SUPPORTED_RELEASES." >&2
      return 1 ;;
  esac
  # Package names that differ between the releases (64-bit time_t rename:
  # trixie's libmagic1t64 provides the virtual name libmagic1).
  case "$DEBIAN_CODENAME" in
    bookworm) RELEASE_PACKAGES=(libmagic1) ;;
    trixie) RELEASE_PACKAGES=(libmagic1t64) ;;
  esac
}
