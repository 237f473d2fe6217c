# Step 2 of the walkthrough, the codes key, and the key of the log groups and the alarm topic:
# the same key policies as infra/constructs/parameter-store-key.ts and activation-broker.ts.

locals {
  account_root = "arn:${local.partition}:iam::${local.account}:root"
  ssm_via      = "ssm.${local.region}.amazonaws.com"

  # Grants let a principal use a key outside its key policy; only AWS services acting for an AWS
  # resource may create them (Control Tower's CT.KMS.PR.3).
  deny_grants_except_for_aws_services = {
    Sid       = "DenyGrantsExceptForAwsServices"
    Effect    = "Deny"
    Principal = { AWS = "*" }
    Action    = "kms:CreateGrant"
    Resource  = "*"
    Condition = { BoolIfExists = { "kms:GrantIsForAWSResource" = "false", "aws:PrincipalIsAWSService" = "false" } }
  }
}

resource "aws_kms_key" "codes" {
  count                   = local.create_codes_key ? 1 : 0
  description             = "Encrypts SSM activation codes in Parameter Store (${var.deployment_name})"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      # Keeps the key manageable through IAM: a key whose policy names no administrator cannot be
      # changed or deleted.
      { Effect = "Allow", Principal = { AWS = local.account_root }, Action = "kms:*", Resource = "*" },
      {
        # What lets the broker's role (granted in IAM) use the key: through Parameter Store only.
        Sid       = "AllowParameterStoreUseThroughSsm"
        Effect    = "Allow"
        Principal = { AWS = local.account_root }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = "*"
        Condition = { StringEquals = { "kms:ViaService" = local.ssm_via, "kms:CallerAccount" = local.account } }
      },
      {
        # Absent kms:ViaService (a direct call) also matches StringNotEquals, so it is denied.
        Sid       = "DenyUseOutsideSsm"
        Effect    = "Deny"
        Principal = { AWS = "*" }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
        Resource  = "*"
        Condition = { StringNotEquals = { "kms:ViaService" = local.ssm_via } }
      },
      local.deny_grants_except_for_aws_services,
    ]
  })
}

resource "aws_kms_key" "logs" {
  description             = "Encrypts the activation broker's log groups (${var.deployment_name})"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Principal = { AWS = local.account_root }, Action = "kms:*", Resource = "*" },
      {
        Sid       = "AllowCloudWatchLogsForThisAccountsLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = { ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:*" } }
      },
      local.deny_grants_except_for_aws_services,
      {
        Sid       = "AllowCloudWatchAlarmsToPublishEncrypted"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
      },
    ]
  })
}
