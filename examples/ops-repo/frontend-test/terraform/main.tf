# The frontend: a CDN site that talks to the backend API.
terraform {
  required_version = ">= 1.4"
}

# Set from backend-test's output api_url by `inputs:` in ../bitops.config.yaml (TF_VAR_api_url).
variable "api_url" {
  description = "Backend API the site calls (backend-test output api_url)."
  type        = string
  default     = "http://localhost:8080"
}

variable "domain" {
  type    = string
  default = "frontend-test.example.internal"
}

resource "terraform_data" "site" {
  input = {
    url     = "https://${var.domain}"
    backend = var.api_url
  }
}

output "site_url" {
  description = "Public URL of the site."
  value       = terraform_data.site.output.url
}

output "api_url" {
  description = "Backend API the site was configured with."
  value       = terraform_data.site.output.backend
}
