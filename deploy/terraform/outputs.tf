# The CDK app's outputs (infra/stacks/broker-stack.ts) in snake_case; docs/deploy.md lists them.

output "invoke_url" {
  description = "Broker URL through private DNS (GET: a pair from the default pool)."
  value       = "${local.url}/"
}

output "endpoint_invoke_urls" {
  description = "Broker URL through each VPC endpoint's alias: needs no private DNS."
  value       = [for u in local.endpoint_urls : "${u}/"]
}

output "activation_code_command" {
  description = "Fetch a pair from the default pool, as the reference's clients do."
  value       = "curl -s ${local.url}/ | jq -r .ActivationCode"
}

output "pool_url_template" {
  description = "A pair from a named pool."
  value       = "${local.url}/activations/{pool}"
}

output "linux_install_command" {
  description = "Install and register SSM Agent on a Linux server (install.sh)."
  value       = "curl -fsSL ${local.url}/install.sh | sudo bash"
}

output "windows_install_command" {
  description = "Install and register SSM Agent on a Windows server, in an elevated PowerShell (install.ps1)."
  # Windows PowerShell 5.1 may default to TLS 1.0; the scriptblock form keeps param() working.
  value = "[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12; & ([scriptblock]::Create((Invoke-RestMethod -UseBasicParsing -Uri '${local.url}/install.ps1')))"
}

output "rest_api_id" {
  description = "API id: pass it as vpc_endpoint_allowed_api_ids to pin the endpoint to this API."
  value       = aws_api_gateway_rest_api.broker.id
}

output "vpc_endpoint_ids" {
  description = "The execute-api endpoint(s) the API answers through."
  value       = local.vpc_endpoint_ids
}

output "vpc_endpoint_security_group_id" {
  description = "Security group of the endpoint the module created (null with vpc_endpoint_for_api_gateway)."
  value       = local.create_endpoint ? aws_security_group.endpoint[0].id : null
}

output "kms_key_arn" {
  description = "The key that encrypts the codes in Parameter Store."
  value       = local.codes_key_arn
}

output "pool_table_name" {
  description = "DynamoDB table with the pool state."
  value       = aws_dynamodb_table.pools.name
}

output "parameter_prefix" {
  description = "Parameter Store path of the codes."
  value       = local.parameter_prefix
}

output "function_name" {
  description = "Broker Lambda function."
  value       = aws_lambda_function.broker.function_name
}

output "janitor_function_name" {
  description = "Janitor Lambda function (scheduled; invoke it to clean up now)."
  value       = aws_lambda_function.janitor.function_name
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies: subscribe to it."
  value       = aws_sns_topic.alarms.arn
}

output "function_log_group" {
  description = "Function log."
  value       = aws_cloudwatch_log_group.broker.name
}

output "api_access_log_group" {
  description = "API access log."
  value       = aws_cloudwatch_log_group.access.name
}

output "node_role_name" {
  description = "IAM service role of the registered nodes."
  value       = local.node_role_name
}

output "node_role_arn" {
  description = "ARN of the registered nodes' role."
  value       = "arn:${local.partition}:iam::${local.account}:role/${local.node_role_name}"
}

output "broker_role_arn" {
  description = "Execution role of the broker function."
  value       = aws_iam_role.broker.arn
}

output "janitor_role_arn" {
  description = "Execution role of the janitor."
  value       = aws_iam_role.janitor.arn
}

output "api_gateway_logs_role_arn" {
  description = "The account's API Gateway logging role as set by this module."
  value       = aws_api_gateway_account.this.cloudwatch_role_arn
}
