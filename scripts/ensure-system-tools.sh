#!/usr/bin/env bash
# Install what the browser tests and the translations need from Debian when it is missing:
# chromium (driven by Playwright; never a downloaded browser), gettext (msgfmt), nginx (the
# proxy of `make deploy-local` and its end-to-end test) and jemalloc (the gateway's malloc in
# deploy/ and the soak, docs/operations.md "Memory").
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v msgfmt >/dev/null 2>&1 || missing+=(gettext)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
/sbin/ldconfig -p 2>/dev/null | grep -q 'libjemalloc\.so\.2 ' || missing+=(libjemalloc2)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "Missing ${missing[*]}: install them with apt-get (as root)." >&2; exit 1
  fi
else
  SUDO=
fi
echo "Installing ${missing[*]} from Debian ..."
if ! $SUDO apt-get install -y "${missing[@]}"; then
  $SUDO apt-get update
  $SUDO apt-get install -y "${missing[@]}"
fi
