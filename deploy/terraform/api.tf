# Step 3: the private REST API, its resource policy, routes, stage and the account's logging role.

locals {
  # Built from the caller's account, not the provider's execution_arn: that one leaves the account
  # empty when the provider is configured with skip_requesting_account_id.
  execution_arn = "arn:${local.partition}:execute-api:${local.region}:${local.account}:${aws_api_gateway_rest_api.broker.id}"
}

resource "aws_api_gateway_rest_api" "broker" {
  # Names need not be unique in API Gateway; this one just makes the console readable.
  name        = "${var.deployment_name}-broker"
  description = "SSM hybrid activation broker (${var.deployment_name})"
  endpoint_configuration {
    types            = ["PRIVATE"]
    vpc_endpoint_ids = local.vpc_endpoint_ids
  }
}

# Allow through the named endpoints, deny everything else; optionally narrow to source ranges.
resource "aws_api_gateway_rest_api_policy" "broker" {
  rest_api_id = aws_api_gateway_rest_api.broker.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          Sid       = "AllowInvoke"
          Effect    = "Allow"
          Principal = { AWS = "*" }
          Action    = "execute-api:Invoke"
          Resource  = "${local.execution_arn}/*"
        },
        {
          Sid       = "DenyUnlessThroughVpcEndpoint"
          Effect    = "Deny"
          Principal = { AWS = "*" }
          Action    = "execute-api:Invoke"
          Resource  = "${local.execution_arn}/*"
          Condition = { StringNotEquals = { "aws:SourceVpce" = local.vpc_endpoint_ids } }
        },
      ],
      length(var.api_allowed_source_ip_ranges) > 0 ? [{
        Sid       = "DenyUnlessFromAllowedSourceRanges"
        Effect    = "Deny"
        Principal = { AWS = "*" }
        Action    = "execute-api:Invoke"
        Resource  = "${local.execution_arn}/*"
        Condition = { NotIpAddress = { "aws:VpcSourceIp" = var.api_allowed_source_ip_ranges } }
      }] : [],
    )
  })
}

# GET requests carry no body; body validation is on only so the validator counts as complete.
resource "aws_api_gateway_request_validator" "broker" {
  rest_api_id                 = aws_api_gateway_rest_api.broker.id
  name                        = "broker"
  validate_request_body       = true
  validate_request_parameters = true
}

resource "aws_api_gateway_resource" "activations" {
  rest_api_id = aws_api_gateway_rest_api.broker.id
  parent_id   = aws_api_gateway_rest_api.broker.root_resource_id
  path_part   = "activations"
}

resource "aws_api_gateway_resource" "pool" {
  rest_api_id = aws_api_gateway_rest_api.broker.id
  parent_id   = aws_api_gateway_resource.activations.id
  path_part   = "{pool}"
}

resource "aws_api_gateway_resource" "script" {
  for_each    = toset(["install.sh", "install.ps1"])
  rest_api_id = aws_api_gateway_rest_api.broker.id
  parent_id   = aws_api_gateway_rest_api.broker.root_resource_id
  path_part   = each.key
}

locals {
  # Route -> (resource id, permission path). ANY, not GET: the broker answers other methods with
  # 405 and an Allow header (docs/http-api.md); API Gateway would answer a bare 403.
  routes = {
    root        = { resource_id = aws_api_gateway_rest_api.broker.root_resource_id, path = "/*/" }
    pool        = { resource_id = aws_api_gateway_resource.pool.id, path = "/*/activations/*" }
    install_sh  = { resource_id = aws_api_gateway_resource.script["install.sh"].id, path = "/*/install.sh" }
    install_ps1 = { resource_id = aws_api_gateway_resource.script["install.ps1"].id, path = "/*/install.ps1" }
  }
}

resource "aws_api_gateway_method" "broker" {
  for_each             = local.routes
  rest_api_id          = aws_api_gateway_rest_api.broker.id
  resource_id          = each.value.resource_id
  http_method          = "ANY"
  authorization        = "NONE"
  request_validator_id = aws_api_gateway_request_validator.broker.id
  request_parameters   = each.key == "pool" ? { "method.request.path.pool" = true } : {}
}

resource "aws_api_gateway_integration" "broker" {
  for_each                = local.routes
  rest_api_id             = aws_api_gateway_rest_api.broker.id
  resource_id             = each.value.resource_id
  http_method             = aws_api_gateway_method.broker[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = aws_lambda_function.broker.invoke_arn
}

resource "aws_lambda_permission" "api" {
  for_each      = local.routes
  statement_id  = "api-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.broker.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${local.execution_arn}/${var.api_gateway_stage_name}${each.value.path}"
}

resource "aws_api_gateway_deployment" "broker" {
  rest_api_id = aws_api_gateway_rest_api.broker.id
  description = "SSM hybrid activation broker (${var.deployment_name})"
  # A private API's policy and routes take effect only through a new deployment.
  triggers = {
    redeployment = sha1(jsonencode([
      aws_api_gateway_rest_api_policy.broker.policy,
      aws_api_gateway_request_validator.broker,
      aws_api_gateway_method.broker,
      aws_api_gateway_integration.broker,
    ]))
  }
  lifecycle {
    create_before_destroy = true
  }
  depends_on = [aws_api_gateway_integration.broker, aws_api_gateway_rest_api_policy.broker]
}

# Stage logging is refused until the account has a logging role (one per account and Region).
# The setting outlives this module: `terraform destroy` leaves it as it is.
resource "aws_api_gateway_account" "this" {
  cloudwatch_role_arn = var.cloudwatch_log_role_arn != null ? var.cloudwatch_log_role_arn : aws_iam_role.api_gateway_logs[0].arn
  depends_on          = [aws_iam_role_policy_attachment.api_gateway_logs]
}

resource "aws_api_gateway_stage" "broker" {
  rest_api_id          = aws_api_gateway_rest_api.broker.id
  deployment_id        = aws_api_gateway_deployment.broker.id
  stage_name           = var.api_gateway_stage_name
  xray_tracing_enabled = true
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    # The CDK app's AccessLogFormat.jsonWithStandardFields().
    format = "{\"requestId\":\"$context.requestId\",\"ip\":\"$context.identity.sourceIp\",\"user\":\"$context.identity.user\",\"caller\":\"$context.identity.caller\",\"requestTime\":\"$context.requestTime\",\"httpMethod\":\"$context.httpMethod\",\"resourcePath\":\"$context.resourcePath\",\"status\":\"$context.status\",\"protocol\":\"$context.protocol\",\"responseLength\":\"$context.responseLength\"}"
  }
  depends_on = [aws_api_gateway_account.this]
}

resource "aws_api_gateway_method_settings" "all" {
  rest_api_id = aws_api_gateway_rest_api.broker.id
  stage_name  = aws_api_gateway_stage.broker.stage_name
  method_path = "*/*"
  settings {
    metrics_enabled = true
    logging_level   = "ERROR"
    # Data trace logs full responses, i.e. Activation Codes (I6): never.
    data_trace_enabled     = false
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.reserved_concurrency == 0 ? var.throttling_rate_limit : var.reserved_concurrency
  }
}
