#!/bin/bash
# Turn outputs of upstream deployments into terraform input variables.
#
#   bash "$BITOPS_TEMPDIR/_scripts/outputs-to-tfvars.sh" VAR=BITOPS_OUTPUT_<ENV>_<DEPLOYMENT>_<KEY> ...
#
# Called from a terraform before-deploy hook (cwd = the terraform folder). bitops hands every
# deployment the outputs of the deployments it depends on as BITOPS_OUTPUT_* variables; this
# writes the mapped ones to bitops-inputs.auto.tfvars.json, which terraform loads by itself.
# A missing output leaves the variable at its default, with a warning.
set -e

out="bitops-inputs.auto.tfvars.json"
json_escape() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '%s' "$s"; }

body=""
for pair in "$@"; do
  var=${pair%%=*}
  src=${pair#*=}
  if [ -z "${!src+set}" ]; then
    echo "outputs-to-tfvars: $src is not set; terraform variable '$var' keeps its default" >&2
    continue
  fi
  echo "outputs-to-tfvars: $var <- $src = ${!src}"
  [ -n "$body" ] && body+=","
  body+=$'\n'"  \"$(json_escape "$var")\": \"$(json_escape "${!src}")\""
done
printf '{%s\n}\n' "$body" > "$out"
echo "outputs-to-tfvars: wrote $(pwd)/$out"
