#!/bin/bash
# greeter: a small BitOps-format plugin. It writes a release note for the environment into the
# deployment folder, prints it, and publishes a few KEY=value outputs for dependent deployments.
#
# Called by BitOps / bitops as:  bash deploy.sh <stack-action>
#   <stack-action>  deploy | plan | destroy   (greeter.cli.stack-action, default "deploy")
#
# Variables it reads (exported by core from <env>/greeter/bitops.config.yaml, bitops.schema.yaml):
#   BITOPS_GREETER_NAME        greeter.cli.name            (required)
#   BITOPS_GREETER_GREETING    greeter.options.greeting    (default "Hello")
#   BITOPS_GREETER_NOTE_FILE   greeter.options.note-file   (default "release-note.md")
#   BITOPS_GREETER_DELAY       greeter.options.delay       (default 1, seconds)
#   GREETER_SKIP_DEPLOY        greeter.options.skip-deploy ("true" skips)
# and from core: BITOPS_ENVIRONMENT, BITOPS_OPSREPO_ENVIRONMENT_DIR, and with bitops also
# BITOPS_OUTPUT_FILE (where KEY=value outputs go) and BITOPS_OUTPUT_<ENV>_<DEPLOYMENT>_<KEY>
# (the outputs of the deployments this one depends on).
# shellcheck disable=SC2001
set -e

echo "Running greeter plugin deployment script..."

GREETER_ROOT_OPERATIONS="$BITOPS_OPSREPO_ENVIRONMENT_DIR"
STACK_ACTION="${1:-${BITOPS_GREETER_COMMAND:-deploy}}"

if [ "$GREETER_SKIP_DEPLOY" == "true" ]; then
  echo "GREETER_SKIP_DEPLOY is set.  Skipping."
  exit 0
fi

if [ -z "$GREETER_ROOT_OPERATIONS" ] || [ ! -d "$GREETER_ROOT_OPERATIONS" ]; then
  echo "No greeter directory.  Skipping."
  exit 0
fi

if [ -z "$BITOPS_ENVIRONMENT" ]; then
  echo "BITOPS_ENVIRONMENT is not set" >&2
  exit 1
fi

NAME="${BITOPS_GREETER_NAME:-${GREETER_NAME:-}}"
GREETING="${BITOPS_GREETER_GREETING:-${GREETER_GREETING:-Hello}}"
NOTE_FILE="${BITOPS_GREETER_NOTE_FILE:-${GREETER_NOTE_FILE:-release-note.md}}"
DELAY="${BITOPS_GREETER_DELAY:-${GREETER_DELAY:-1}}"

if [ -z "$NAME" ]; then
  echo "greeter.cli.name is required" >&2
  exit 1
fi
case "$DELAY" in
  ''|*[!0-9]*) echo "greeter.options.delay must be a whole number of seconds, got '$DELAY'" >&2; exit 1 ;;
esac

cd "$GREETER_ROOT_OPERATIONS"

MESSAGE="$GREETING, $NAME! $BITOPS_ENVIRONMENT is deployed."

# Outputs of upstream deployments (bitops). BITOPS_OUTPUT_FILE is this deployment's own file.
upstream_outputs() {
  env | grep '^BITOPS_OUTPUT_' | grep -v '^BITOPS_OUTPUT_FILE=' | LC_ALL=C sort || true
}

render_note() {
  echo "# Release note: $BITOPS_ENVIRONMENT"
  echo
  echo "$MESSAGE"
  echo
  echo "## Outputs received from upstream deployments"
  echo
  if [ -n "$RECEIVED" ]; then
    echo "$RECEIVED" | sed 's/^/- /'
  else
    echo "- (none)"
  fi
}

echo "Upstream outputs received:"
RECEIVED="$(upstream_outputs)"
if [ -n "$RECEIVED" ]; then
  echo "$RECEIVED" | sed 's/^/  /'
else
  echo "  (none)"
fi

case "$STACK_ACTION" in
  deploy)
    render_note > "$NOTE_FILE"
    echo "Wrote $NOTE_FILE:"
    sed 's/^/  | /' "$NOTE_FILE"
    sleep "$DELAY"
    if [ -n "$BITOPS_OUTPUT_FILE" ]; then
      {
        echo "message=$MESSAGE"
        echo "audience=$NAME"
        echo "note_sha256=$(sha256sum "$NOTE_FILE" | cut -d' ' -f1)"
      } >> "$BITOPS_OUTPUT_FILE"
      echo "Published outputs message, audience, note_sha256"
    fi
    ;;
  plan)
    echo "Would write $NOTE_FILE:"
    render_note | sed 's/^/  | /'
    ;;
  destroy)
    rm -f "$NOTE_FILE"
    echo "Removed $NOTE_FILE"
    ;;
  *)
    echo "greeter: unknown stack-action '$STACK_ACTION' (expected deploy, plan or destroy)" >&2
    exit 1
    ;;
esac

echo "greeter: $STACK_ACTION finished for $BITOPS_ENVIRONMENT"
