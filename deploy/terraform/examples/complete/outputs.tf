output "invoke_url" {
  description = "Broker URL through private DNS."
  value       = module.broker.invoke_url
}

output "endpoint_invoke_urls" {
  description = "Broker URL through each endpoint's alias (no private DNS needed)."
  value       = module.broker.endpoint_invoke_urls
}

output "linux_install_command" {
  description = "Run on a Linux server: installs and registers SSM Agent."
  value       = module.broker.linux_install_command
}

output "windows_install_command" {
  description = "Run in an elevated PowerShell on a Windows server."
  value       = module.broker.windows_install_command
}

output "activation_code_command" {
  description = "Fetch a pair from the default pool."
  value       = module.broker.activation_code_command
}

output "alarm_topic_arn" {
  description = "Subscribe to it to hear the alarms."
  value       = module.broker.alarm_topic_arn
}

output "rest_api_id" {
  description = "Pass as vpc_endpoint_allowed_api_ids on a second apply to pin the endpoint to this API."
  value       = module.broker.rest_api_id
}

output "role_arns" {
  description = "The deployment's roles."
  value = {
    broker           = module.broker.broker_role_arn
    janitor          = module.broker.janitor_role_arn
    node             = module.broker.node_role_arn
    api_gateway_logs = module.broker.api_gateway_logs_role_arn
  }
}
