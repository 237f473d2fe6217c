terraform {
  # 1.9: a variable's validation may refer to other variables (cross-variable checks below).
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.100 is the oldest release this module is tested with; nodejs24.x (the default
      # lambda_runtime) needs 6.19 or later (hashicorp/terraform-provider-aws#44986).
      version = ">= 5.100.0, < 7.0.0"
    }
  }
}
