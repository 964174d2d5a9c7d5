# The backend: a subnet, a database and an API, all inside the shared network.
terraform {
  required_version = ">= 1.4"
}

# Set from shared-network's outputs by `inputs:` in ../bitops.config.yaml (TF_VAR_…).
variable "vpc_id" {
  description = "Network to place the backend in (shared-network output vpc_id)."
  type        = string
  default     = "vpc-local"
}

variable "network_cidr" {
  description = "Address range of the network (shared-network output cidr)."
  type        = string
  default     = "10.20.0.0/16"
}

variable "db_name" {
  type    = string
  default = "orders"
}

variable "db_port" {
  type    = number
  default = 5432
}

resource "terraform_data" "subnet" {
  input = {
    vpc_id = var.vpc_id
    cidr   = cidrsubnet(var.network_cidr, 8, 10)
  }
}

resource "terraform_data" "database" {
  input = {
    endpoint = "${var.db_name}.${terraform_data.subnet.output.vpc_id}.db.internal:${var.db_port}"
  }
}

resource "terraform_data" "api" {
  input = {
    url = "http://api.backend-test.internal:8080"
  }
  # redeploy the API whenever the database moves
  triggers_replace = [terraform_data.database.output.endpoint]
}

output "subnet_cidr" {
  value = terraform_data.subnet.output.cidr
}

output "db_endpoint" {
  description = "host:port of the database."
  value       = terraform_data.database.output.endpoint
}

output "api_url" {
  description = "Base URL of the backend API."
  value       = terraform_data.api.output.url
}
