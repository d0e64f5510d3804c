#!/usr/bin/env bash
# DEP-02: fail on high or critical advisories in production dependencies (docs/dependencies.md).
#
# npm's JSON report is judged, not only its exit status:
#   - a report with high or critical advisories: print npm's own report, exit 1;
#   - a report without them: one line, exit 0;
#   - no report because the advisory service cannot be reached (a registry or mirror without the
#     audit endpoint, or no network): a banner that says no audit happened, exit 0, so that CI
#     still runs where only package downloads are possible; with NPM_AUDIT_REQUIRED=1 (release
#     builds) this is a failure, exit 1;
#   - anything else (npm crashed, unreadable output): exit 1; an audit that cannot be read is not a pass.
set -uo pipefail

report=$(npm audit --omit=dev --audit-level=high --json 2>/dev/null)

# Prints one of: "clean", "advisories <high> <critical>", "unavailable <reason>", "unreadable <reason>".
verdict=$(printf '%s' "$report" | node -e '
  const text = require("fs").readFileSync(0, "utf8");
  let report;
  try { report = JSON.parse(text); } catch { console.log("unreadable npm audit printed no JSON report"); process.exit(0); }
  const counts = report && report.metadata && report.metadata.vulnerabilities;
  if (counts) {
    const high = Number(counts.high || 0), critical = Number(counts.critical || 0);
    console.log(high + critical > 0 ? `advisories ${high} ${critical}` : "clean");
    process.exit(0);
  }
  // npm reports an HTTP error of the advisory endpoint with statusCode, a network error with error.code.
  const networkCodes = ["ENOTFOUND", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH"];
  const code = report && report.error && report.error.code;
  if (report && (report.statusCode || networkCodes.includes(code))) {
    console.log(`unavailable ${String(report.message || code || report.statusCode).split("\n")[0]}`);
    process.exit(0);
  }
  console.log(`unreadable ${String((report && report.error && report.error.summary) || "the report has no advisory counts").split("\n")[0]}`);
')

banner() {
  local line='################################################################################'
  printf '%s\n' "$line"
  for text in "$@"; do printf '### %s\n' "$text"; done
  printf '%s\n' "$line"
}

case "$verdict" in
  clean)
    echo "npm audit: no high or critical advisories in production dependencies"
    exit 0
    ;;
  advisories*)
    read -r _ high critical <<< "$verdict"
    npm audit --omit=dev --audit-level=high
    echo "npm audit: FAILED: ${high} high and ${critical} critical advisories in production dependencies (docs/dependencies.md, 'A security fix')" >&2
    exit 1
    ;;
  unavailable*)
    reason=${verdict#unavailable }
    banner \
      "npm audit: UNAVAILABLE: the advisory service could not be reached; DEP-02 was NOT checked in this run." \
      "npm said: ${reason}" \
      "This is not a pass. Before a release, run: NPM_AUDIT_REQUIRED=1 bash scripts/audit-dependencies.sh" \
      "against a registry that serves the audit endpoint (docs/dependencies.md)." >&2
    if [ "${NPM_AUDIT_REQUIRED:-0}" = "1" ]; then
      echo "npm audit: FAILED: NPM_AUDIT_REQUIRED=1 and no audit result" >&2
      exit 1
    fi
    exit 0
    ;;
  *)
    printf '%s\n' "$report" >&2
    echo "npm audit: FAILED: ${verdict#unreadable }; an audit that cannot be read is not a pass" >&2
    exit 1
    ;;
esac
