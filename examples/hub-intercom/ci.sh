#!/usr/bin/env bash
# CI for the example plugin: install it, serve the sandbox (which now includes its fake), and
# check that the hub shows its source end to end with no change to the hub:
# hub sync, hub accounts, hub timeline, hub health --explain, hub status.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
port="${HUB_INTERCOM_CI_PORT:-8799}"

pip install --quiet "$here"

hub sandbox serve --port "$port" --companies 40 > "$work/sandbox.log" 2>&1 &
sandbox=$!
trap 'kill "$sandbox" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 60); do
  grep -q "Sandbox ready" "$work/sandbox.log" 2>/dev/null && break
  sleep 0.5
done
grep -q "Intercom" "$work/sandbox.log" || { cat "$work/sandbox.log" >&2; exit 1; }

hub plugins > "$work/plugins.txt"
grep -q "hub-intercom" "$work/plugins.txt" || { echo "hub-intercom not loaded" >&2; exit 1; }

url="http://127.0.0.1:$port"
cat > "$work/hub.toml" <<TOML
[hub]
database = "hub.db"

[connections.hubspot]
connector = "hubspot"
[connections.hubspot.settings]
access_token = "env:HUBSPOT_TOKEN"
base_url = "$url"

[connections.stripe]
connector = "stripe"
[connections.stripe.settings]
api_key = "env:STRIPE_KEY"
base_url = "$url"

[connections.intercom]
connector = "intercom"
[connections.intercom.settings]
access_token = "env:INTERCOM_TOKEN"
base_url = "$url"
TOML
chmod 600 "$work/hub.toml"
export HUB_CONFIG="$work/hub.toml" HUBSPOT_TOKEN=pat-sandbox-hub STRIPE_KEY=sk_test_hubsandbox \
  INTERCOM_TOKEN=intercom-sandbox-token

expect() {  # expect WHAT PATTERN FILE
  grep -q -- "$2" "$3" || { echo "CI: $1 does not show '$2':" >&2; cat "$3" >&2; exit 1; }
}

hub check > "$work/check.txt"
expect "hub check" "intercom (intercom)" "$work/check.txt"
hub sync --json > "$work/sync.json"
expect "hub sync" '"connection": "intercom"' "$work/sync.json"
hub map > /dev/null
hub health > /dev/null
hub --format plain accounts --limit 0 > "$work/accounts.txt"
hub --format table accounts > "$work/accounts-table.txt"
expect "hub accounts" "I Intercom" "$work/accounts-table.txt"
domain="$(python - "$work/hub.toml" <<'PY'
import sqlite3, sys, pathlib
db = pathlib.Path(sys.argv[1]).parent / "hub.db"
row = sqlite3.connect(db).execute(
    "SELECT a.domain FROM events e JOIN accounts a ON a.id = e.account_id "
    "WHERE e.source = 'intercom' AND a.domain IS NOT NULL ORDER BY e.ts DESC LIMIT 1"
).fetchone()
print(row[0] if row else "")
PY
)"
[ -n "$domain" ] || { echo "CI: no Intercom event reached an account" >&2; exit 1; }
hub --format plain timeline "$domain" > "$work/timeline.txt"
expect "hub timeline" "intercom_conversation_opened" "$work/timeline.txt"
hub health --explain "$domain" > "$work/explain.txt"
expect "hub health --explain" "Intercom conversations" "$work/explain.txt"
hub status --json > "$work/status.json"
expect "hub status" '"connection": "intercom"' "$work/status.json"
hub playbooks > /dev/null
hub intercom-events > "$work/events.txt"
expect "hub intercom-events" "intercom_conversation_bad_rating" "$work/events.txt"
echo "CI: hub-intercom OK ($domain)"
