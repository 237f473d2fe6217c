# A complete root module: the broker in an existing VPC, with one pool besides `default`.
# Build the function zips first (from the repository root): npx tsx deploy/terraform/package.ts

provider "aws" {
  region = var.region
}

module "broker" {
  source = "../.."

  deployment_name          = var.deployment_name
  broker_zip               = var.broker_zip
  janitor_zip              = var.janitor_zip
  vpc_id_for_api_gateway   = var.vpc_id_for_api_gateway
  subnets_for_vpc_endpoint = var.subnets_for_vpc_endpoint
  allowed_ip_range         = var.allowed_ip_range

  pools = {
    linux = {
      registration_limit = 500
      tags               = { team = "platform" }
      hygiene            = { name_tag = true }
    }
  }

  lambda_runtime            = var.lambda_runtime
  table_deletion_protection = var.table_deletion_protection
}
