# Monitoring: a metrics collector in the shared network and a dashboard.
terraform {
  required_version = ">= 1.4"
}

# Set from shared-network's outputs by `inputs:` in ../bitops.config.yaml (TF_VAR_…).
variable "vpc_id" {
  description = "Network to watch (shared-network output vpc_id)."
  type        = string
  default     = "vpc-local"
}

variable "retention_days" {
  type    = number
  default = 7
}

resource "terraform_data" "collector" {
  input = {
    vpc_id         = var.vpc_id
    retention_days = var.retention_days
  }
}

resource "terraform_data" "dashboard" {
  input = {
    url = "https://grafana.monitoring-test.internal/d/${terraform_data.collector.output.vpc_id}"
  }
}

output "dashboard_url" {
  value = terraform_data.dashboard.output.url
}

output "retention_days" {
  value = terraform_data.collector.output.retention_days
}
