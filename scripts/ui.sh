#!/usr/bin/env bash
# The window's front end: installs its npm dependencies (exactly the lock file's, only when
# they changed) and builds ui/dist, which the app embeds. No browser is downloaded: the tests
# use Debian's Chromium.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../ui"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
stamp=node_modules/.installed-from
if [ "$(sha256sum package-lock.json)" != "$(cat "$stamp" 2>/dev/null)" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  sha256sum package-lock.json >"$stamp"
fi
npm run --silent build >/dev/null
