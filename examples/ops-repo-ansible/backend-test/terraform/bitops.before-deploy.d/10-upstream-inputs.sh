#!/bin/bash
# Before-deploy hook (cwd: this terraform folder). Feed shared-network's outputs to terraform.
set -e
bash "$BITOPS_TEMPDIR/_scripts/outputs-to-tfvars.sh" \
  vpc_id=BITOPS_OUTPUT_SHARED_NETWORK_TERRAFORM_VPC_ID \
  network_cidr=BITOPS_OUTPUT_SHARED_NETWORK_TERRAFORM_CIDR
