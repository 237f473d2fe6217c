# Step 1 of the walkthrough: the execute-api interface endpoint through which on-premises servers
# reach the private API, unless vpc_endpoint_for_api_gateway names existing ones.

resource "aws_security_group" "endpoint" {
  count       = local.create_endpoint ? 1 : 0
  name_prefix = "${var.deployment_name}-endpoint-"
  description = "HTTPS to the activation broker API from the allowed on-premises ranges only"
  vpc_id      = var.vpc_id_for_api_gateway

  dynamic "ingress" {
    for_each = var.allowed_ip_range
    content {
      description = "HTTPS from ${ingress.value}"
      protocol    = "tcp"
      from_port   = 443
      to_port     = 443
      cidr_blocks = [ingress.value]
    }
  }
  # No egress block: Terraform then removes the default allow-all egress rule, and an interface
  # endpoint never initiates connections.

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_endpoint" "api" {
  count               = local.create_endpoint ? 1 : 0
  vpc_id              = var.vpc_id_for_api_gateway
  service_name        = "com.amazonaws.${local.region}.execute-api"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = var.subnets_for_vpc_endpoint
  security_group_ids  = [aws_security_group.endpoint[0].id]
  private_dns_enabled = var.private_dns_enabled

  # The API's resource policy names this endpoint, so it exists before the API: pinning it to one
  # API id is a second apply with the rest_api_id output (vpc_endpoint_allowed_api_ids).
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = length(var.vpc_endpoint_allowed_api_ids) > 0 ? "InvokeTheBrokerApiOnly" : "InvokeThisAccountsApisOnly"
      Effect    = "Allow"
      Principal = { AWS = "*" }
      Action    = "execute-api:Invoke"
      Resource = (
        length(var.vpc_endpoint_allowed_api_ids) > 0
        ? [for id in var.vpc_endpoint_allowed_api_ids : "arn:${local.partition}:execute-api:${local.region}:${local.account}:${id}/*"]
        : ["arn:${local.partition}:execute-api:${local.region}:${local.account}:*"]
      )
    }]
  })

  tags = { Name = "${var.deployment_name}-execute-api" }
}
