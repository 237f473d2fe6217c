# The four roles with exactly the permissions the CDK app grants (infra/constructs/
# activation-broker.ts, standby-refill.ts, janitor.ts); the parity test holds them equal.

locals {
  lambda_trust = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  xray_statement = {
    Effect   = "Allow"
    Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    Resource = "*"
  }
  parameter_arn = "arn:${local.partition}:ssm:${local.region}:${local.account}:parameter/${local.prefix_path}"
  our_nodes     = "arn:${local.partition}:ssm:${local.region}:${local.account}:managed-instance/*"
}

# The role SSM gives hybrid nodes; trust limited to SSM acting for this account and Region.
resource "aws_iam_role" "node" {
  count       = var.default_iam_role == null ? 1 : 0
  name        = "${var.deployment_name}-node"
  description = "Service role assumed by on-premises managed nodes registered through the activation broker"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ssm.amazonaws.com" }
      Action    = "sts:AssumeRole"
      # Confused-deputy protection, as the Systems Manager hybrid setup guide recommends.
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account }
        ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:ssm:${local.region}:${local.account}:*" }
      }
    }]
  })
}

resource "aws_iam_role_policy_attachment" "node_core" {
  count      = var.default_iam_role == null ? 1 : 0
  role       = aws_iam_role.node[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_role" "broker" {
  name               = "${var.deployment_name}-function"
  description        = "Activation broker function: vends SSM hybrid activations"
  assume_role_policy = local.lambda_trust
}

# Not AWSLambdaBasicExecutionRole: that one may write to every log group in the account.
resource "aws_iam_role_policy" "broker_base" {
  name = "logs-and-tracing"
  role = aws_iam_role.broker.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [{ Effect = "Allow", Action = ["logs:CreateLogStream", "logs:PutLogEvents"], Resource = "${aws_cloudwatch_log_group.broker.arn}:*" }],
      [local.xray_statement],
    )
  })
}

resource "aws_iam_role_policy" "broker" {
  name = "broker"
  role = aws_iam_role.broker.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid = "PoolState"
        # No Scan: listing pools is the janitor's and the CLI's.
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
        Resource = aws_dynamodb_table.pools.arn
      },
      {
        Sid      = "ActivationCodes"
        Effect   = "Allow"
        Action   = ["ssm:PutParameter", "ssm:GetParameters", "ssm:DeleteParameter"]
        Resource = "${local.parameter_arn}/*"
      },
      {
        Sid       = "EncryptCodesThroughParameterStoreOnly"
        Effect    = "Allow"
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = local.codes_key_arn
        Condition = { StringEquals = { "kms:ViaService" = local.ssm_via } }
      },
      {
        Sid       = "PassNodeRoleToSsmOnly"
        Effect    = "Allow"
        Action    = "iam:PassRole"
        Resource  = local.pass_role_arns
        Condition = { StringEquals = { "iam:PassedToService" = "ssm.amazonaws.com" } }
      },
      {
        # CreateActivation has no resource type (Service Authorization Reference), so Resource is
        # "*"; its aws:RequestTag / aws:TagKeys keys insist on this deployment's tag and only the
        # tag keys the pools define.
        Sid      = "CreateTaggedActivationsOnly"
        Effect   = "Allow"
        Action   = ["ssm:CreateActivation", "ssm:AddTagsToResource"]
        Resource = "*"
        Condition = {
          StringEquals              = { "aws:RequestTag/activation-broker:deployment" = local.deployment_id }
          "ForAllValues:StringLike" = { "aws:TagKeys" = local.allowed_tag_keys }
        }
      },
      {
        # Neither action has a resource type or condition key: "*" is the only form.
        Sid      = "DescribeOutgoingAndDeleteLostActivations"
        Effect   = "Allow"
        Action   = ["ssm:DescribeActivations", "ssm:DeleteActivation"]
        Resource = "*"
      },
    ]
  })
}

# Standby refills (I9): a vend invokes the function asynchronously to make the next activation.
resource "aws_iam_role_policy" "broker_self_invoke" {
  name = "standby-refill"
  role = aws_iam_role.broker.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "InvokeSelfForStandbyRefill"
      Effect   = "Allow"
      Action   = "lambda:InvokeFunction"
      Resource = aws_lambda_function.broker.arn
    }]
  })
}

resource "aws_iam_role" "janitor" {
  name               = "${var.deployment_name}-janitor"
  description        = "Activation broker janitor: deletes spent activations and tidies the fleet"
  assume_role_policy = local.lambda_trust
}

resource "aws_iam_role_policy" "janitor_base" {
  name = "logs-and-tracing"
  role = aws_iam_role.janitor.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [{ Effect = "Allow", Action = ["logs:CreateLogStream", "logs:PutLogEvents"], Resource = "${aws_cloudwatch_log_group.janitor.arn}:*" }],
      [local.xray_statement],
    )
  })
}

resource "aws_iam_role_policy" "janitor" {
  name = "janitor"
  role = aws_iam_role.janitor.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [
        { Sid = "ListPoolsAndRetire", Effect = "Allow", Action = ["dynamodb:Scan", "dynamodb:UpdateItem"], Resource = aws_dynamodb_table.pools.arn },
        { Sid = "ListCodesWithoutDecrypting", Effect = "Allow", Action = "ssm:GetParametersByPath", Resource = local.parameter_arn },
        { Sid = "DeleteCodes", Effect = "Allow", Action = "ssm:DeleteParameter", Resource = "${local.parameter_arn}/*" },
        {
          # No resource type and no condition keys for these: "*" is the only form AWS accepts.
          Sid      = "ListAndDeleteActivations"
          Effect   = "Allow"
          Action   = ["ssm:DescribeActivations", "ssm:DeleteActivation", "ssm:DescribeInstanceInformation"]
          Resource = "*"
        },
      ],
      # Node actions only when a pool opts into fleet hygiene, and only on this deployment's nodes.
      local.hygiene_names_nodes ? [{
        Sid      = "NameOurNodes"
        Effect   = "Allow"
        Action   = "ssm:AddTagsToResource"
        Resource = local.our_nodes
        Condition = {
          StringEquals                = { "ssm:resourceTag/activation-broker:deployment" = local.deployment_id }
          "ForAllValues:StringEquals" = { "aws:TagKeys" = ["Name"] }
        }
      }] : [],
      local.hygiene_deregisters ? [{
        Sid       = "DeregisterOurDuplicates"
        Effect    = "Allow"
        Action    = "ssm:DeregisterManagedInstance"
        Resource  = local.our_nodes
        Condition = { StringEquals = { "ssm:resourceTag/activation-broker:deployment" = local.deployment_id } }
      }] : [],
    )
  })
}

# The account's API Gateway logging role, unless cloudwatch_log_role_arn names one.
resource "aws_iam_role" "api_gateway_logs" {
  count       = var.cloudwatch_log_role_arn == null ? 1 : 0
  name        = "${var.deployment_name}-apigw-logs"
  description = "API Gateway account logging role (set by the activation broker)"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "apigateway.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy_attachment" "api_gateway_logs" {
  count      = var.cloudwatch_log_role_arn == null ? 1 : 0
  role       = aws_iam_role.api_gateway_logs[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}
