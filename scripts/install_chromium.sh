#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests when it is missing. Playwright drives it through
# executable_path=/usr/bin/chromium because `playwright install` cannot download browsers here.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Chromium is missing: run 'sudo apt-get install -y chromium' (the browser tests need /usr/bin/chromium)." >&2
  exit 1
fi
echo "Installing Debian's chromium for the browser tests..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version
