# The names are src/settings-schema.ts's in snake_case: the CDK context key KmsKeyId is kms_key_id
# here, the walkthrough's VpcIdForApiGateway is vpc_id_for_api_gateway (test/settings-schema.test.ts
# compares). docs/configuration.md lists every setting with its name on each surface. Every input
# is checked here, at plan time.

variable "deployment_name" {
  description = "Prefix of every name this module gives (functions, roles, table, alarms, dashboard); like the CDK app's stack name. Two deployments in one account and Region need two names."
  type        = string
  default     = "activation-broker"
  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,31}$", var.deployment_name))
    error_message = "deployment_name: letters, digits and hyphens, starting with a letter, at most 32."
  }
}

variable "broker_zip" {
  description = "Path of the broker function's zip (index.js, handler index.handler): `npx tsx deploy/terraform/package.ts` writes dist/terraform/broker.zip."
  type        = string
  validation {
    condition     = endswith(var.broker_zip, ".zip") && fileexists(var.broker_zip)
    error_message = "broker_zip: the path of an existing .zip file (build it with `npx tsx deploy/terraform/package.ts`)."
  }
}

variable "janitor_zip" {
  description = "Path of the janitor function's zip: `npx tsx deploy/terraform/package.ts` writes dist/terraform/janitor.zip."
  type        = string
  validation {
    condition     = endswith(var.janitor_zip, ".zip") && fileexists(var.janitor_zip)
    error_message = "janitor_zip: the path of an existing .zip file (build it with `npx tsx deploy/terraform/package.ts`)."
  }
}

variable "vpc_endpoint_for_api_gateway" {
  description = "Existing execute-api interface endpoint ids (VpcEndpointForApiGateway). Empty: the module creates one in vpc_id_for_api_gateway."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for id in var.vpc_endpoint_for_api_gateway : can(regex("^vpce-[0-9a-f]{8,17}$", id))])
    error_message = "vpc_endpoint_for_api_gateway: VPC endpoint ids (vpce-...)."
  }
}

variable "vpc_id_for_api_gateway" {
  description = "VPC your on-premises servers reach over Direct Connect or VPN (VpcIdForApiGateway); it needs DNS resolution and DNS hostnames on. Required unless vpc_endpoint_for_api_gateway is set."
  type        = string
  default     = null
  validation {
    condition     = var.vpc_id_for_api_gateway == null ? length(var.vpc_endpoint_for_api_gateway) > 0 : can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id_for_api_gateway))
    error_message = "vpc_id_for_api_gateway: a VPC id (vpc-...), required unless vpc_endpoint_for_api_gateway names an existing endpoint."
  }
}

variable "subnets_for_vpc_endpoint" {
  description = "Subnets of vpc_id_for_api_gateway for the endpoint's network interfaces, one per Availability Zone (SubnetsForVpcEndpoint). Required unless vpc_endpoint_for_api_gateway is set."
  type        = list(string)
  default     = []
  validation {
    condition = (
      alltrue([for s in var.subnets_for_vpc_endpoint : can(regex("^subnet-[0-9a-f]{8,17}$", s))]) &&
      (length(var.subnets_for_vpc_endpoint) > 0 || length(var.vpc_endpoint_for_api_gateway) > 0)
    )
    error_message = "subnets_for_vpc_endpoint: subnet ids (subnet-...), at least one unless vpc_endpoint_for_api_gateway names an existing endpoint."
  }
}

variable "allowed_ip_range" {
  description = "On-premises IPv4 CIDRs allowed to reach the endpoint on TCP 443 (AllowedIPRange). Required unless vpc_endpoint_for_api_gateway is set."
  type        = list(string)
  default     = []
  validation {
    condition = (
      alltrue([for c in var.allowed_ip_range : can(cidrhost(c, 0)) && can(regex("^[0-9.]+/[0-9]+$", c))]) &&
      (length(var.allowed_ip_range) > 0 || length(var.vpc_endpoint_for_api_gateway) > 0)
    )
    error_message = "allowed_ip_range: IPv4 CIDRs such as 10.0.0.0/8, at least one unless vpc_endpoint_for_api_gateway names an existing endpoint."
  }
}

variable "private_dns_enabled" {
  description = "Private DNS on the new endpoint (PrivateDnsEnabled). On: every execute-api name resolves to it inside the VPC (docs/deploy.md, 'Private DNS on or off')."
  type        = bool
  default     = true
  validation {
    condition     = var.private_dns_enabled != null
    error_message = "private_dns_enabled: true or false."
  }
}

variable "vpc_endpoint_allowed_api_ids" {
  description = "REST API ids the new endpoint may invoke (VpcEndpointAllowedApiIds). Empty: any private API of this account. Set it to this deployment's rest_api_id output on a second apply."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for id in var.vpc_endpoint_allowed_api_ids : can(regex("^[a-z0-9]{10}$", id))])
    error_message = "vpc_endpoint_allowed_api_ids: REST API ids (10 lower-case letters and digits)."
  }
}

variable "api_allowed_source_ip_ranges" {
  description = "Also deny API calls whose aws:VpcSourceIp is outside these IPv4 CIDRs (ApiAllowedSourceIpRanges). Empty: no such check."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.api_allowed_source_ip_ranges : can(cidrhost(c, 0)) && can(regex("^[0-9.]+/[0-9]+$", c))])
    error_message = "api_allowed_source_ip_ranges: IPv4 CIDRs such as 10.20.0.0/16."
  }
}

variable "kms_key_id" {
  description = "Existing KMS key id or key ARN for the codes (KmsKeyId); its key policy must let this account's IAM policies use it. Null: the module creates the key (the walkthrough's step 2)."
  type        = string
  default     = null
  validation {
    condition     = var.kms_key_id == null || can(regex("^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/)?(mrk-)?[0-9a-f-]{32,36}$", var.kms_key_id))
    error_message = "kms_key_id: a KMS key id or key ARN (an alias cannot scope an IAM policy)."
  }
}

variable "api_gateway_stage_name" {
  description = "API stage, the last part of the broker's URL (ApiGatewayStageName)."
  type        = string
  default     = "prod"
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.api_gateway_stage_name))
    error_message = "api_gateway_stage_name: letters, digits, hyphens and underscores, at most 128."
  }
}

variable "cloudwatch_log_role_arn" {
  description = "The account's API Gateway logging role (CloudwatchLogRoleArn). Null: the module creates one and sets it for the account (docs/deploy.md, 'The account's logging role')."
  type        = string
  default     = null
  validation {
    condition     = var.cloudwatch_log_role_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\\w+=,.@/-]{1,512}$", var.cloudwatch_log_role_arn))
    error_message = "cloudwatch_log_role_arn: an IAM role ARN."
  }
}

variable "pools" {
  description = "Pools besides `default` (which always exists), keyed by pool name: the CDK app's Pools with snake_case keys. EKS pools are not supported here (use the CDK path)."
  type = map(object({
    iam_role                 = optional(string)
    registration_limit       = optional(number, 100)
    max_activations_per_hour = optional(number, 100)
    expiration_hours         = optional(number, 24)
    safety_margin_minutes    = optional(number, 60)
    default_instance_name    = optional(string)
    description              = optional(string)
    standby                  = optional(bool, true)
    tags                     = optional(map(string), {})
    hygiene = optional(object({
      name_tag                         = optional(bool, false)
      deregister_duplicates_after_days = optional(number)
    }))
  }))
  default = {}
  # The broker checks the whole document again when it starts (src/core/pool-config.ts); these
  # are the checks a plan can make, so most mistakes never reach a deployment.
  validation {
    condition     = alltrue([for n, _ in var.pools : can(regex("^[A-Za-z0-9_-]{1,64}$", n))])
    error_message = "pools: pool names must match [A-Za-z0-9_-]{1,64}."
  }
  validation {
    condition = alltrue([for p in values(var.pools) : (
      p.registration_limit >= 1 && p.registration_limit <= 1000 && floor(p.registration_limit) == p.registration_limit &&
      p.max_activations_per_hour >= 1 && p.max_activations_per_hour <= 10000 &&
      p.expiration_hours >= 1 && p.expiration_hours <= 720 &&
      p.safety_margin_minutes >= 1 && p.safety_margin_minutes < p.expiration_hours * 60
    )])
    error_message = "pools: registration_limit 1-1000 (SSM's maximum), max_activations_per_hour 1-10000, expiration_hours 1-720 (SSM's 30 days), safety_margin_minutes at least 1 and shorter than expiration_hours."
  }
  validation {
    condition = alltrue([for p in values(var.pools) : (
      (p.iam_role == null || can(regex("^[\\w+=,.@-]{1,64}$", p.iam_role))) &&
      length(p.tags) <= 40 &&
      alltrue([for k, _ in p.tags : !startswith(lower(k), "aws:") && !startswith(k, "activation-broker:")])
    )])
    error_message = "pools: iam_role is a role name (not an ARN); at most 40 tags; tag keys may not start with 'aws:' or 'activation-broker:'."
  }
  validation {
    # Conditionals, not ||: Terraform evaluates both sides of || even when the left one is true.
    condition = alltrue([for p in values(var.pools) : (
      p.hygiene == null ? true : p.hygiene.deregister_duplicates_after_days == null ? true :
      p.hygiene.deregister_duplicates_after_days >= 1 && p.hygiene.deregister_duplicates_after_days <= 365
    )])
    error_message = "pools: hygiene.deregister_duplicates_after_days is 1-365."
  }
}

variable "parameter_prefix" {
  description = "Parameter Store path of the codes (ParameterPrefix). Null: /activation-broker/<deployment_name>."
  type        = string
  default     = null
  validation {
    condition     = var.parameter_prefix == null || can(regex("^(/[A-Za-z0-9_.-]+)+$", var.parameter_prefix))
    error_message = "parameter_prefix: an absolute Parameter Store path such as /activation-broker/prod."
  }
}

variable "default_iam_role" {
  description = "Existing IAM service role for the registered nodes (DefaultIamRole, BROKER_DEFAULT_IAM_ROLE). Null: the module creates one with AmazonSSMManagedInstanceCore."
  type        = string
  default     = null
  validation {
    condition     = var.default_iam_role == null || can(regex("^[\\w+=,.@-]{1,64}$", var.default_iam_role))
    error_message = "default_iam_role: an IAM role name."
  }
}

variable "log_level" {
  description = "Function log level (LogLevel, POWERTOOLS_LOG_LEVEL)."
  type        = string
  default     = "INFO"
  validation {
    condition     = contains(["DEBUG", "INFO", "WARN", "ERROR"], var.log_level)
    error_message = "log_level: DEBUG, INFO, WARN or ERROR."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's, the janitor's and the API's logs (LogRetentionDays)."
  type        = number
  default     = 365
  validation {
    # The values CloudWatch Logs accepts for retentionInDays (PutRetentionPolicy API reference).
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days: one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "throttling_rate_limit" {
  description = "Stage requests per second, all callers together (ThrottlingRateLimit)."
  type        = number
  default     = 50
  validation {
    condition     = var.throttling_rate_limit >= 1 && var.throttling_rate_limit <= 10000
    error_message = "throttling_rate_limit: 1-10000."
  }
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for the broker, also its ceiling (ReservedConcurrency); 0 reserves none for either function (docs/deploy.md, 'What limits a caller on AWS')."
  type        = number
  default     = 100
  validation {
    condition     = var.reserved_concurrency >= 0 && var.reserved_concurrency <= 10000 && floor(var.reserved_concurrency) == var.reserved_concurrency
    error_message = "reserved_concurrency: a whole number 0-10000."
  }
}

variable "table_deletion_protection" {
  description = "DynamoDB deletion protection on the pool table (TableDeletionProtection). While true, `terraform destroy` cannot delete the table."
  type        = bool
  default     = true
  validation {
    condition     = var.table_deletion_protection != null
    error_message = "table_deletion_protection: true or false."
  }
}

variable "lambda_runtime" {
  description = "Lambda runtime of both functions. The broker is built and tested for Node.js 24 (nodejs24.x, what the CDK app deploys), which hashicorp/aws accepts from 6.19.0 on; nodejs22.x only lets older 5.x providers plan."
  type        = string
  default     = "nodejs24.x"
  validation {
    condition     = contains(["nodejs24.x", "nodejs22.x"], var.lambda_runtime)
    error_message = "lambda_runtime: nodejs24.x (hashicorp/aws >= 6.19.0) or nodejs22.x."
  }
}
