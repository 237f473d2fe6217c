# The alarm topic, the six alarms and a dashboard of infra/constructs/monitoring.ts. The metrics
# carry counts and pool names only, never a code.

locals {
  namespace = "ActivationBroker"
  # Dimension Powertools Metrics adds to every broker metric.
  service = { service = "activation-broker" }
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.deployment_name}-alarms"
  display_name      = "Activation broker alarms"
  kms_master_key_id = aws_kms_key.logs.arn
}

resource "aws_sns_topic_policy" "alarms" {
  arn = aws_sns_topic.alarms.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AllowPublishThroughSSLOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "sns:Publish"
      Resource  = aws_sns_topic.alarms.arn
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

resource "aws_cloudwatch_metric_alarm" "api_faults" {
  alarm_name          = "${var.deployment_name}-Api-Fault-Count-Critical"
  alarm_description   = "Fault count is too high."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  metric_query {
    id          = "m1"
    label       = "5XX Fault"
    return_data = true
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "5XXError"
      dimensions  = { ApiName = aws_api_gateway_rest_api.broker.name, Stage = var.api_gateway_stage_name }
      period      = 300
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "rotation_failures" {
  alarm_name          = "${var.deployment_name}-Broker-RotationFailures-Critical"
  alarm_description   = "Threshold of 0 has been breached."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  namespace           = local.namespace
  metric_name         = "RotationFailures"
  dimensions          = local.service
  period              = 300
  statistic           = "Sum"
}

# The lowest of the pools' hourly maxima: some pool never had more slots than this all hour.
resource "aws_cloudwatch_metric_alarm" "slots_low" {
  alarm_name          = "${var.deployment_name}-Broker-SlotsLow-Warning"
  alarm_description   = "Threshold of 0 has been breached."
  comparison_operator = "LessThanOrEqualToThreshold"
  threshold           = 0
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  metric_query {
    id          = "expr_1"
    label       = "Slots left (the most stuck pool)"
    expression  = "MIN([${join(",", [for i, _ in local.pool_names : "p${i}"])}])"
    return_data = true
  }
  dynamic "metric_query" {
    for_each = local.pool_names
    content {
      id          = "p${metric_query.key}"
      return_data = false
      metric {
        namespace   = local.namespace
        metric_name = "SlotsLeft"
        dimensions  = merge(local.service, { Pool = metric_query.value })
        period      = 3600
        stat        = "Maximum"
      }
    }
  }
}

# Any theft at all: someone registered more nodes with a pair than it was meant for.
resource "aws_cloudwatch_metric_alarm" "slot_theft" {
  alarm_name          = "${var.deployment_name}-Broker-SlotTheft-Critical"
  alarm_description   = "Threshold of 0 has been breached."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  metric_query {
    id          = "expr_1"
    label       = "Slot thefts (all pools)"
    expression  = "SUM([${join(",", [for i, _ in local.pool_names : "theft${i}"])}])"
    return_data = true
  }
  dynamic "metric_query" {
    for_each = local.pool_names
    content {
      id          = "theft${metric_query.key}"
      return_data = false
      metric {
        namespace   = local.namespace
        metric_name = "SlotTheftDetected"
        dimensions  = merge(local.service, { Pool = metric_query.value })
        period      = 300
        stat        = "Sum"
      }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "tier_headroom" {
  alarm_name          = "${var.deployment_name}-Broker-TierHeadroom-Warning"
  alarm_description   = "Threshold of 10 has been breached."
  comparison_operator = "LessThanThreshold"
  threshold           = 10
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  namespace           = local.namespace
  metric_name         = "TierHeadroomPercent"
  dimensions          = local.service
  period              = 3600
  statistic           = "Minimum"
}

resource "aws_cloudwatch_metric_alarm" "janitor_faults" {
  alarm_name          = "${var.deployment_name}-Janitor-Fault-Count-Critical"
  alarm_description   = "Fault count is too high."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  metric_query {
    id          = "m1"
    label       = "Faults"
    return_data = true
    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Errors"
      dimensions  = { FunctionName = aws_lambda_function.janitor.function_name }
      period      = 300
      stat        = "Sum"
    }
  }
}

locals {
  broker_metric = { for m in ["Vends", "Rotations", "StandbyRefills", "RotationFailures", "LeaseWaits", "Throttles", "BudgetRefusals"] :
    m => [local.namespace, m, "service", "activation-broker"]
  }
  graph = { type = "metric", width = 12, height = 6 }
}

resource "aws_cloudwatch_dashboard" "broker" {
  dashboard_name = var.deployment_name
  dashboard_body = jsonencode({
    widgets = [
      merge(local.graph, { properties = {
        title   = "Vends and rotations", region = local.region, stat = "Sum", period = 300,
        metrics = [for m in ["Vends", "Rotations", "StandbyRefills", "RotationFailures"] : local.broker_metric[m]]
      } }),
      merge(local.graph, { properties = {
        title   = "Refusals", region = local.region, stat = "Sum", period = 300,
        metrics = [for m in ["LeaseWaits", "Throttles", "BudgetRefusals"] : local.broker_metric[m]]
      } }),
      merge(local.graph, { properties = {
        title   = "Slots left per pool", region = local.region, stat = "Maximum", period = 3600,
        metrics = [for p in local.pool_names : [local.namespace, "SlotsLeft", "Pool", p, "service", "activation-broker"]]
      } }),
      merge(local.graph, { properties = {
        title = "Security (slot thefts, refused pairs healed)", region = local.region, stat = "Sum", period = 300,
        metrics = concat(
          [for p in local.pool_names : [local.namespace, "SlotTheftDetected", "Pool", p, "service", "activation-broker"]],
          [for p in local.pool_names : [local.namespace, "RefusedPairs", "Pool", p, "service", "activation-broker"]],
        )
      } }),
      merge(local.graph, { properties = {
        title = "Managed nodes (standard tier: 1,000 per account and Region)", region = local.region, period = 3600,
        metrics = [
          [local.namespace, "ManagedNodes", "service", "activation-broker", { stat = "Maximum" }],
          [local.namespace, "TierHeadroomPercent", "service", "activation-broker", { stat = "Minimum" }],
        ]
      } }),
      merge(local.graph, { properties = {
        title = "API and janitor faults", region = local.region, stat = "Sum", period = 300,
        metrics = [
          ["AWS/ApiGateway", "5XXError", "ApiName", aws_api_gateway_rest_api.broker.name, "Stage", var.api_gateway_stage_name],
          ["AWS/Lambda", "Errors", "FunctionName", aws_lambda_function.janitor.function_name],
        ]
      } }),
    ]
  })
}
