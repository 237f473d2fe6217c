# The broker as the CDK app deploys it (infra/), in one Terraform module: the walkthrough's three
# steps (endpoint, key, API) with the same permissions, settings, alarms and log retention.
# test/infra/terraform.test.ts compares this module's plan with the CDK app's synthesized template
# and fails on any difference in IAM actions, function environment, alarms or log retention.
#
# No aws_ssm_activation here on purpose: the broker creates activations at run time and keeps
# their codes in Parameter Store (SecureString), so no Activation Code ever lands in Terraform state.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.id
  account    = data.aws_caller_identity.current.account_id
  dns_suffix = data.aws_partition.current.dns_suffix

  create_endpoint  = length(var.vpc_endpoint_for_api_gateway) == 0
  vpc_endpoint_ids = local.create_endpoint ? [aws_vpc_endpoint.api[0].id] : var.vpc_endpoint_for_api_gateway

  create_codes_key = var.kms_key_id == null
  codes_key_arn = (
    local.create_codes_key ? aws_kms_key.codes[0].arn :
    startswith(var.kms_key_id, "arn:") ? var.kms_key_id :
    "arn:${local.partition}:kms:${local.region}:${local.account}:key/${var.kms_key_id}"
  )

  parameter_prefix = coalesce(var.parameter_prefix, "/activation-broker/${var.deployment_name}")
  # ARNs carry a parameter's name without its leading slash.
  prefix_path = trimprefix(local.parameter_prefix, "/")

  node_role_name = var.default_iam_role != null ? var.default_iam_role : aws_iam_role.node[0].name

  # Value of the activation-broker:deployment tag: unique per deployment (the API id), readable.
  deployment_id = "${var.deployment_name}:${aws_api_gateway_rest_api.broker.id}"

  # Built by hand like the CDK app's: the stage's invoke_url would make the function depend on the
  # stage, which depends on the function through the integrations.
  url           = "https://${aws_api_gateway_rest_api.broker.id}.execute-api.${local.region}.${local.dns_suffix}/${var.api_gateway_stage_name}"
  endpoint_urls = [for id in local.vpc_endpoint_ids : "https://${aws_api_gateway_rest_api.broker.id}-${id}.execute-api.${local.region}.${local.dns_suffix}/${var.api_gateway_stage_name}"]

  # `default` always exists and comes first, as in the broker (src/core/pool-config.ts).
  pool_names = distinct(concat(["default"], keys(var.pools)))

  # The pools document with the broker's own keys and every default filled in, as the CDK app
  # writes it into BROKER_POOLS; only attributes that are set appear.
  pools_document = {
    pools = {
      for name, p in var.pools : name => merge(
        {
          registrationLimit     = p.registration_limit
          maxActivationsPerHour = p.max_activations_per_hour
          expirationHours       = p.expiration_hours
          safetyMarginMinutes   = p.safety_margin_minutes
          standby               = p.standby
          tags                  = p.tags
        },
        { for k, v in {
          iamRole             = p.iam_role
          defaultInstanceName = p.default_instance_name
          description         = p.description
        } : k => v if v != null },
        { for k, h in { hygiene = p.hygiene } : k => merge(
          { nameTag = h.name_tag },
          { for dk, dv in { deregisterDuplicatesAfterDays = h.deregister_duplicates_after_days } : dk => dv if dv != null },
        ) if h != null },
      )
    }
  }
  pools_json = jsonencode(local.pools_document)

  # Roles the broker may pass to SSM: each pool's role, the node role for pools that name none.
  pass_role_arns = [
    for role in distinct([
      for n in local.pool_names : try(var.pools[n].iam_role, null) != null ? var.pools[n].iam_role : local.node_role_name
    ]) : "arn:${local.partition}:iam::${local.account}:role/${role}"
  ]
  # Tag keys activations may carry: the broker's own and those the pools set.
  allowed_tag_keys = concat(["activation-broker:*"], sort(distinct(flatten([for p in values(var.pools) : keys(p.tags)]))))

  # Fleet hygiene the janitor's role needs node actions for (infra/constructs/janitor.ts).
  hygiene_names_nodes = anytrue([for p in values(var.pools) : try(p.hygiene.name_tag, false)])
  hygiene_deregisters = anytrue([for p in values(var.pools) : try(p.hygiene.deregister_duplicates_after_days != null, false)])

  broker_environment = {
    BROKER_TABLE_NAME       = aws_dynamodb_table.pools.name
    BROKER_PARAMETER_PREFIX = local.parameter_prefix
    BROKER_KMS_KEY_ID       = local.codes_key_arn
    BROKER_DEFAULT_IAM_ROLE = local.node_role_name
    BROKER_POOLS            = local.pools_json
    BROKER_DEPLOYMENT       = local.deployment_id
    BROKER_PUBLIC_URL       = local.url
    # The alias names through these endpoints are this API's own names too (src/entry/lambda.ts).
    BROKER_VPC_ENDPOINT_FOR_API_GATEWAY = join(",", local.vpc_endpoint_ids)
    POWERTOOLS_SERVICE_NAME             = "activation-broker"
    POWERTOOLS_LOG_LEVEL                = var.log_level
    NODE_OPTIONS                        = "--enable-source-maps"
  }
  # The janitor reads the same settings, minus what only the request path uses.
  janitor_environment = merge(
    { for k, v in local.broker_environment : k => v if k != "BROKER_PUBLIC_URL" },
    { POWERTOOLS_SERVICE_NAME = "activation-broker-janitor" },
  )

  # Hourly, as the CDK app's janitor runs.
  janitor_schedule = "rate(1 hour)"
}
