#!/bin/sh
# Copy htmx from node_modules (installed from package-lock.json) to static/vendor/: nothing from a CDN.
set -eu
cd "$(dirname "$0")/.."
[ -f node_modules/htmx.org/dist/htmx.min.js ] || npm ci --no-audit --no-fund --loglevel=error
mkdir -p static/vendor
cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js
echo "static/vendor/htmx.min.js: htmx $(node -p 'require("./node_modules/htmx.org/package.json").version')"
