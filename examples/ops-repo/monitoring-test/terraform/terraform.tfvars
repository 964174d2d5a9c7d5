# Overrides the default of the `owner` variable that _default/terraform/common.tf declares.
owner = "sre-team"
