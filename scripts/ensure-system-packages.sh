#!/usr/bin/env bash
# Installs the Debian packages listed in system-packages.txt that are not installed yet. Idempotent:
# with everything present it only runs dpkg-query. Without root (and no sudo) it prints the command instead.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
list="${1:-$here/system-packages.txt}"
command -v dpkg-query >/dev/null 2>&1 || { echo "linus: not a Debian system; install these yourself: $(grep -v '^#' "$list" | xargs)" >&2; exit 0; }
missing=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < "$list"
((${#missing[@]} == 0)) && exit 0
echo "linus: installing Debian packages: ${missing[*]}" >&2
if [[ $EUID -eq 0 ]]; then sudo=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
  echo "linus: cannot install without root; run: sudo apt-get install -y ${missing[*]}" >&2; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
  $sudo apt-get update >/dev/null 2>&1 && $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1
} || echo "linus: could not install ${missing[*]}; the server starts without them (see README)" >&2
exit 0
