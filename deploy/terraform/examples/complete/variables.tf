variable "region" {
  description = "Region of the deployment."
  type        = string
  default     = "eu-west-1"
  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region: an AWS Region such as eu-west-1."
  }
}

variable "deployment_name" {
  description = "Prefix of the deployment's names."
  type        = string
  default     = "activation-broker"
  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,31}$", var.deployment_name))
    error_message = "deployment_name: letters, digits and hyphens, starting with a letter, at most 32."
  }
}

variable "broker_zip" {
  description = "The broker's zip, from `npx tsx deploy/terraform/package.ts`."
  type        = string
  default     = "../../../../dist/terraform/broker.zip"
  validation {
    condition     = endswith(var.broker_zip, ".zip")
    error_message = "broker_zip: a .zip path."
  }
}

variable "janitor_zip" {
  description = "The janitor's zip, from `npx tsx deploy/terraform/package.ts`."
  type        = string
  default     = "../../../../dist/terraform/janitor.zip"
  validation {
    condition     = endswith(var.janitor_zip, ".zip")
    error_message = "janitor_zip: a .zip path."
  }
}

variable "vpc_id_for_api_gateway" {
  description = "VPC your servers reach over Direct Connect or VPN (DNS resolution and hostnames on)."
  type        = string
  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id_for_api_gateway))
    error_message = "vpc_id_for_api_gateway: a VPC id (vpc-...)."
  }
}

variable "subnets_for_vpc_endpoint" {
  description = "Two or more subnets of that VPC in different Availability Zones."
  type        = list(string)
  validation {
    condition     = length(var.subnets_for_vpc_endpoint) > 0 && alltrue([for s in var.subnets_for_vpc_endpoint : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "subnets_for_vpc_endpoint: subnet ids (subnet-...), at least one."
  }
}

variable "allowed_ip_range" {
  description = "Your on-premises IPv4 CIDRs."
  type        = list(string)
  validation {
    condition     = length(var.allowed_ip_range) > 0 && alltrue([for c in var.allowed_ip_range : can(cidrhost(c, 0))])
    error_message = "allowed_ip_range: IPv4 CIDRs such as 10.0.0.0/8, at least one."
  }
}

variable "lambda_runtime" {
  description = "nodejs24.x with hashicorp/aws >= 6.19.0; nodejs22.x lets 5.x providers plan."
  type        = string
  default     = "nodejs24.x"
  validation {
    condition     = contains(["nodejs24.x", "nodejs22.x"], var.lambda_runtime)
    error_message = "lambda_runtime: nodejs24.x or nodejs22.x."
  }
}

variable "table_deletion_protection" {
  description = "Deletion protection on the pool table; set false before `terraform destroy` when the state may go."
  type        = bool
  default     = true
  validation {
    condition     = var.table_deletion_protection != null
    error_message = "table_deletion_protection: true or false."
  }
}
