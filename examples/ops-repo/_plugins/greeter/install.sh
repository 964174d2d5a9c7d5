#!/bin/bash
# Run once when the plugin is installed (BitOps: at image build; bitops: `bitops plugins install`).
# The greeter needs nothing beyond bash and coreutils, so this only checks that they are there.
set -e

for cmd in bash sha256sum sort sleep; do
  if ! command -v "$cmd" > /dev/null 2>&1; then
    echo "greeter: required command '$cmd' not found" >&2
    exit 1
  fi
done
echo "greeter plugin: dependencies present"
