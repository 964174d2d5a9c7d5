#!/bin/bash
# Before-deploy hook (cwd: this terraform folder). Feed backend-test's outputs to terraform.
set -e
bash "$BITOPS_TEMPDIR/_scripts/outputs-to-tfvars.sh" \
  api_url=BITOPS_OUTPUT_BACKEND_TEST_TERRAFORM_API_URL
