# bitops copies this file into every environment's terraform/ folder before the environment runs
# (_default merge; a file of the same name in the environment would win). So every terraform
# deployment has an `owner` variable and publishes it as the output `owner`.
variable "owner" {
  description = "Team that owns the environment."
  type        = string
  default     = "platform-team"
}

output "owner" {
  description = "Team that owns the environment."
  value       = var.owner
}
