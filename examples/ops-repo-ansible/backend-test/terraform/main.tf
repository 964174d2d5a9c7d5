# The backend's infrastructure: a database in the shared network.
terraform {
  required_version = ">= 1.4"
}

# Set from shared-network's outputs by `inputs:` in ../bitops.config.yaml (TF_VAR_…).
variable "vpc_id" {
  type    = string
  default = "vpc-local"
}

variable "network_cidr" {
  type    = string
  default = "10.30.0.0/16"
}

variable "db_name" {
  type    = string
  default = "orders"
}

resource "terraform_data" "database" {
  input = {
    endpoint = "${var.db_name}.${var.vpc_id}.db.internal:5432"
    subnet   = cidrsubnet(var.network_cidr, 8, 10)
  }
}

output "db_endpoint" {
  value = terraform_data.database.output.endpoint
}

output "db_subnet" {
  value = terraform_data.database.output.subnet
}
