#!/usr/bin/env bash
# DEP-02: fail on high or critical advisories in production dependencies.
# If the registry's advisory endpoint cannot be reached (a mirror without the audit API), say so
# loudly and do not pretend the audit passed; CI continues, since there is nothing to judge.
set -uo pipefail
report=$(npm audit --omit=dev --audit-level=high --json 2>/dev/null)
status=$?
if [ "$status" -eq 0 ]; then
  echo "npm audit: no high or critical advisories in production dependencies"
  exit 0
fi
if printf '%s' "$report" | node -e 'const r = JSON.parse(require("fs").readFileSync(0, "utf8")); process.exit(r.statusCode && !r.metadata ? 0 : 1)'; then
  echo "npm audit: UNAVAILABLE: the registry's advisory endpoint answered an error; no audit result this run"
  exit 0
fi
npm audit --omit=dev --audit-level=high
exit 1
