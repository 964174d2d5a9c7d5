# The network the test environments live in. terraform_data is built in: no download.
terraform {
  required_version = ">= 1.4"
}

variable "name" {
  type    = string
  default = "shared"
}

variable "cidr" {
  type    = string
  default = "10.30.0.0/16"
}

resource "terraform_data" "network" {
  input = {
    cidr   = var.cidr
    vpc_id = "vpc-${substr(sha1("${var.name}/${var.cidr}"), 0, 12)}"
  }
}

output "vpc_id" {
  value = terraform_data.network.output.vpc_id
}

output "cidr" {
  value = terraform_data.network.output.cidr
}
