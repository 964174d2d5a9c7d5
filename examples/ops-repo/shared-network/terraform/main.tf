# The network every test environment is placed in.
# terraform_data is built into terraform >= 1.4: nothing is downloaded, state stays local.
terraform {
  required_version = ">= 1.4"
}

variable "name" {
  description = "Name of the network."
  type        = string
  default     = "shared"
}

variable "cidr" {
  description = "Address range of the network."
  type        = string
  default     = "10.20.0.0/16"
}

resource "terraform_data" "network" {
  input = {
    name = var.name
    cidr = var.cidr
    # deterministic stand-in for a cloud-assigned id
    vpc_id = "vpc-${substr(sha1("${var.name}/${var.cidr}"), 0, 12)}"
  }
}

output "vpc_id" {
  description = "Id of the network."
  value       = terraform_data.network.output.vpc_id
}

output "cidr" {
  description = "Address range; environments carve their subnets out of it."
  value       = terraform_data.network.output.cidr
}
