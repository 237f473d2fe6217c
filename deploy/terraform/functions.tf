# The pool table, the broker function, the janitor on its schedule, and their log groups.

resource "aws_dynamodb_table" "pools" {
  name         = "${var.deployment_name}-pools"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  attribute {
    name = "pk"
    type = "S"
  }
  point_in_time_recovery {
    enabled = true
  }
  # The AWS managed key, not the codes key: that one is usable through Systems Manager only.
  server_side_encryption {
    enabled = true
  }
  deletion_protection_enabled = var.table_deletion_protection
}

resource "aws_cloudwatch_log_group" "broker" {
  name              = "/aws/lambda/${var.deployment_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_cloudwatch_log_group" "janitor" {
  name              = "/aws/lambda/${var.deployment_name}-janitor"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.deployment_name}-access"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_lambda_function" "broker" {
  function_name    = var.deployment_name
  description      = "SSM hybrid activation broker"
  role             = aws_iam_role.broker.arn
  filename         = var.broker_zip
  source_code_hash = filebase64sha256(var.broker_zip)
  handler          = "index.handler"
  runtime          = var.lambda_runtime
  architectures    = ["arm64"]
  memory_size      = 256
  # Under API Gateway's 29 s integration limit, with room for a rotation wait plus SDK retries.
  timeout = 25
  # -1: no reservation. Kept at the stage's burst by default, so a flood meets API Gateway's 429
  # before Lambda's throttle (which a proxy integration turns into a 500).
  reserved_concurrent_executions = var.reserved_concurrency == 0 ? -1 : var.reserved_concurrency
  tracing_config {
    mode = "Active"
  }
  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.broker.name
  }
  environment {
    variables = local.broker_environment
  }
  depends_on = [aws_iam_role_policy.broker_base]
}

resource "aws_lambda_function" "janitor" {
  function_name    = "${var.deployment_name}-janitor"
  description      = "SSM hybrid activation broker: janitor"
  role             = aws_iam_role.janitor.arn
  filename         = var.janitor_zip
  source_code_hash = filebase64sha256(var.janitor_zip)
  handler          = "index.handler"
  runtime          = var.lambda_runtime
  architectures    = ["arm64"]
  memory_size      = 256
  # Paging through thousands of activations and nodes at SSM's API rates takes minutes.
  timeout = 300
  # One run at a time: two janitors would race each other's deletions for nothing.
  reserved_concurrent_executions = var.reserved_concurrency == 0 ? -1 : 1
  tracing_config {
    mode = "Active"
  }
  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.janitor.name
  }
  environment {
    variables = local.janitor_environment
  }
  depends_on = [aws_iam_role_policy.janitor_base]
}

resource "aws_cloudwatch_event_rule" "janitor" {
  name_prefix         = "${var.deployment_name}-janitor-"
  description         = "Runs the activation broker's janitor"
  schedule_expression = local.janitor_schedule
}

resource "aws_cloudwatch_event_target" "janitor" {
  rule = aws_cloudwatch_event_rule.janitor.name
  arn  = aws_lambda_function.janitor.arn
  retry_policy {
    maximum_retry_attempts = 0
  }
}

resource "aws_lambda_permission" "janitor_schedule" {
  statement_id  = "schedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.janitor.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.janitor.arn
}
