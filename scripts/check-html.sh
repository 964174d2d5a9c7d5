#!/usr/bin/env bash
# Loads a bitops HTML timeline in headless Chromium and checks the page after its script ran:
# one bar per deployment, no error caught by the page's window.onerror. Optionally takes a
# screenshot to look at.
#
#   scripts/check-html.sh TIMELINE.html [--screenshot OUT.png] [--size 1400,700]
#
# Make a timeline with `bitops report [RUN] --html TIMELINE.html`. Needs `chromium` (Debian).
set -euo pipefail

page="${1:?usage: check-html.sh TIMELINE.html [--screenshot OUT.png] [--size W,H]}"
shift
shot="" size="1400,700"
while [ $# -gt 0 ]; do
  case "$1" in
    --screenshot) shot="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
  echo "check-html: chromium is not installed (apt-get install -y chromium)" >&2
  exit 2
fi
page="$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
# Headless in a container, reaching nothing over the network.
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --user-data-dir="$profile" --virtual-time-budget=5000)

dom="$("$browser" "${flags[@]}" --dump-dom "file://$page" 2>/dev/null)"
if grep -q 'data-error="' <<<"$dom"; then
  echo "check-html: the page reported a script error: $(grep -o 'data-error="[^"]*"' <<<"$dom" | head -1)" >&2
  exit 1
fi
ready="$(grep -o 'data-ready="[0-9]*"' <<<"$dom" | head -1 | tr -dc 0-9)"
bars="$(grep -o 'data-node="[^"]*"' <<<"$dom" | sort -u | wc -l)"
expected="$(python3 - "$page" <<'PY'
import html, json, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
data = re.search(r'<script type="application/json" id="run-data">(.*?)</script>', text, re.S).group(1)
print(len(json.loads(data)["deployments"]))
PY
)"
if [ -z "$ready" ] || [ "$bars" != "$expected" ]; then
  echo "check-html: expected $expected bars, the page drew ${bars} (ready=${ready:-no})" >&2
  exit 1
fi
echo "check-html: ok, $bars bars, no script errors"
if [ -n "$shot" ]; then
  "$browser" "${flags[@]}" --hide-scrollbars --window-size="$size" --screenshot="$shot" "file://$page" 2>/dev/null >/dev/null
  echo "check-html: screenshot in $shot"
fi
