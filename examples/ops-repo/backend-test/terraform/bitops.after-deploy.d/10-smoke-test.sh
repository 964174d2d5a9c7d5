#!/bin/bash
# After-deploy hook (cwd: this terraform folder). Check the database endpoint looks like host:port.
set -e
bash "$BITOPS_TEMPDIR/_scripts/smoke-test.sh" db_endpoint '^[a-z0-9.-]+\.internal:[0-9]+$'
