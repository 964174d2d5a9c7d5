# The frontend: a CDN site that talks to the backend API.
terraform {
  required_version = ">= 1.4"
}

# Filled in from backend-test's outputs by bitops.before-deploy.d/10-upstream-inputs.sh.
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
