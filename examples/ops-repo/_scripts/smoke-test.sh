#!/bin/bash
# Check a terraform output after an apply.
#
#   bash "$BITOPS_TEMPDIR/_scripts/smoke-test.sh" OUTPUT_NAME EXTENDED_REGEX
#
# Called from a terraform after-deploy hook (cwd = the terraform folder, where the local state
# is). Skipped unless the terraform plugin ran an apply (TERRAFORM_COMMAND comes from
# terraform.cli.stack-action).
set -e

name=$1
pattern=$2
if [ "${TERRAFORM_COMMAND:-${BITOPS_TERRAFORM_COMMAND:-}}" != "apply" ]; then
  echo "smoke-test: stack-action is not apply; nothing to check"
  exit 0
fi
value=$(terraform output -raw "$name")
if [[ ! $value =~ $pattern ]]; then
  echo "smoke-test: output $name='$value' does not match /$pattern/" >&2
  exit 1
fi
echo "smoke-test: output $name='$value' looks right"
