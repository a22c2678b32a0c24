#!/usr/bin/env bash
# System programs the tests drive for real, from Debian's packages, installed when missing:
#   chromium  the browser test (through Playwright; Playwright's own browser download needs
#             the internet)
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
echo "Installing Debian packages for the tests: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
