/**
 * Every setting of the broker and its deployments, once: its name, type, range, default and
 * meaning. Each surface takes its names from the key, by one rule each:
 *
 *   key (PascalCase)       KmsKeyId
 *   CDK context key        KmsKeyId              the key itself
 *   CloudFormation param.  KmsKeyId              the key itself
 *   Terraform variable     kms_key_id            snake_case
 *   environment variable   BROKER_KMS_KEY_ID     BROKER_ + UPPER_SNAKE
 *
 * src/settings.ts (the environment), infra/config/settings.ts (CDK context) and infra/release.ts
 * (CloudFormation parameters) build their checks from these entries; deploy/terraform/variables.tf
 * and docs/configuration.md are held to them by test/settings-schema.test.ts.
 *
 * Plain data: no zod, no CDK, so the CDK app, the broker and the tests all read the same thing.
 */

export type Surface = "env" | "context" | "cfn" | "tf";

export interface Setting {
  /** PascalCase words; every surface's name derives from it. */
  readonly key: string;
  /** Where an operator sets it. */
  readonly on: readonly Surface[];
  readonly type: "string" | "integer" | "number" | "boolean" | "list" | "json" | "enum";
  /** The unit of a duration or quantity: durations are in seconds unless AWS's own unit is coarser. */
  readonly unit?: string;
  readonly min?: number;
  readonly max?: number;
  /** enum: the values it accepts. */
  readonly values?: readonly (string | number)[];
  /** A value or item pattern, where a surface can check one (regular expression source). */
  readonly pattern?: string;
  /** The default every surface that has the setting applies; absent when it is optional. */
  readonly default?: string | number | boolean;
  /** The default as the documentation says it, when it is not one literal value. */
  readonly defaultText?: string;
  /** One line: what it does, for whom. */
  readonly description: string;
}

const ROLE_NAME = "^[\\w+=,.@-]{1,64}$";

/**
 * The broker's own process settings (`on` includes "env") first, then the deployment's. An entry
 * with several surfaces is one setting with one name on each.
 */
export const SETTINGS: readonly Setting[] = [
  // --- the broker process: the environment, set by the deploy tooling on AWS ---
  {
    key: "TableName",
    on: ["env"],
    type: "string",
    min: 3,
    max: 255,
    description: "DynamoDB pool table (partition key `pk`, String); required",
  },
  {
    key: "ParameterPrefix",
    on: ["env", "context", "tf"],
    type: "string",
    pattern: "^(/[A-Za-z0-9_.-]+)+$",
    defaultText: "`/activation-broker`; on AWS `/activation-broker/<stack or name>`",
    description: "Parameter Store path; codes live at `<prefix>/<pool>/<activation-id>`",
  },
  {
    key: "KmsKeyId",
    on: ["env", "context", "cfn", "tf"],
    type: "string",
    defaultText: "`alias/aws/ssm`; on AWS a key is created (step 2)",
    description:
      "KMS key of the SecureString parameters; on AWS an existing key id or key ARN (an alias cannot scope an IAM policy), which skips step 2",
  },
  {
    key: "DefaultIamRole",
    on: ["env", "context", "tf"],
    type: "string",
    pattern: ROLE_NAME,
    defaultText: "none; on AWS a role is created",
    description:
      "IAM service role for managed nodes, for pools without `iamRole`; on AWS an existing role, else one is created (output `NodeRoleName`)",
  },
  {
    key: "HybridNodesRole",
    on: ["env", "context"],
    type: "string",
    pattern: ROLE_NAME,
    defaultText: "none; on AWS created when EKS pools need it",
    description:
      "role of EKS Hybrid Nodes pools without `iamRole` ([eks.md](eks.md)); on AWS an existing role, else one is created",
  },
  {
    key: "Pools",
    on: ["env", "context", "cfn", "tf"],
    type: "json",
    defaultText: "only `default`",
    description:
      'the pools: `{"pools": {…}}` or the path of a file holding it, the format `npm start --config` reads (environment, CDK context); `{"linux": {…}}` inline in CDK context; `{"pools": {…}}` (CloudFormation); a map with snake_case keys (Terraform)',
  },

  {
    key: "Deployment",
    on: ["env"],
    type: "string",
    min: 1,
    max: 256,
    defaultText: "the table name",
    description: "value of the `activation-broker:deployment` tag on every activation",
  },
  {
    key: "LeaseSeconds",
    on: ["env"],
    type: "integer",
    unit: "seconds",
    min: 5,
    max: 900,
    default: 30,
    description: "rotation lease: how long a crashed rotator can block others (tuning and tests)",
  },
  {
    key: "RotationWaitSeconds",
    on: ["env"],
    type: "number",
    unit: "seconds",
    min: 0,
    max: 25,
    default: 5,
    description:
      "how long a request waits for another's rotation before a 503; each commit it sees meanwhile starts the wait again, up to 15 s in all, or this if longer (tuning and tests)",
  },
  {
    key: "PublicUrl",
    on: ["env"],
    type: "string",
    defaultText: "see below",
    description: "URL written into the served install scripts",
  },
  {
    key: "ReconcileIntervalSeconds",
    on: ["env"],
    type: "integer",
    unit: "seconds",
    min: 0,
    max: 86_400,
    default: 300,
    description: "slot-theft check of every pool in long-running processes; `0` turns it off",
  },
  {
    key: "VpcEndpointForApiGateway",
    on: ["env", "context", "cfn", "tf"],
    type: "list",
    pattern: "^vpce-[0-9a-f]{8,17}$",
    defaultText: "none: step 1 creates one",
    description:
      "the `execute-api` VPC endpoint id(s) the private API is reached through (comma-separated), whose alias URLs are the API's own too; on AWS an existing one skips step 1 (CloudFormation: one, step 1's output)",
  },
  {
    key: "KeepAliveTimeoutSeconds",
    on: ["env"],
    type: "number",
    unit: "seconds",
    min: 0.1,
    max: 600,
    default: 5,
    description:
      "Node server: how long a kept-alive socket waits for its next request; behind a load balancer, above its idle timeout",
  },
  {
    key: "MaxConnections",
    on: ["env"],
    type: "integer",
    min: 1,
    max: 1_000_000,
    default: 1000,
    description:
      "Node server: beyond it only `/healthz` is answered, on 32 sockets more; one source address may hold a tenth of them, a trusted proxy's count only in the total (local mode: 200000)",
  },

  {
    key: "TrustedProxies",
    on: ["env"],
    type: "list",
    description: "Node server: addresses or CIDR blocks whose `X-Forwarded-*` headers are believed",
  },
  {
    key: "RateLimitPerSecond",
    on: ["env"],
    type: "number",
    unit: "requests per second",
    min: 0,
    max: 100_000,
    default: 10,
    description:
      "Node server: requests per second per source address, bursts of ten seconds' worth; `0` = no limit (local mode: `0`)",
  },

  // --- the deployment: CDK context, CloudFormation parameters, Terraform variables ---
  {
    key: "DeploymentName",
    on: ["context", "tf"],
    type: "string",
    pattern: "^[A-Za-z][A-Za-z0-9-]{0,31}$",
    defaultText: "none (CDK); `activation-broker` (Terraform)",
    description:
      "tells deployments in one account apart: the CDK stack names' suffix, the prefix of every name the Terraform module gives",
  },
  {
    key: "ApiGatewayStageName",
    on: ["context", "cfn", "tf"],
    type: "string",
    pattern: "^[A-Za-z0-9_-]{1,128}$",
    default: "prod",
    description: "API stage, the last part of the broker's URL (`https://…/<stage>/`)",
  },
  {
    key: "VpcIdForApiGateway",
    on: ["context", "cfn", "tf"],
    type: "string",
    pattern: "^vpc-[0-9a-f]{8,17}$",
    defaultText: "required unless an endpoint is given",
    description:
      "VPC your on-premises servers reach over Direct Connect or VPN, with DNS resolution and DNS hostnames on",
  },
  {
    key: "SubnetsForVpcEndpoint",
    on: ["context", "cfn", "tf"],
    type: "list",
    pattern: "^subnet-[0-9a-f]{8,17}$",
    defaultText: "required unless an endpoint is given",
    description: "subnets of that VPC for the endpoint's network interfaces, one per Availability Zone",
  },
  {
    key: "AllowedIPRange",
    on: ["context", "cfn", "tf"],
    type: "list",
    defaultText: "required unless an endpoint is given",
    description:
      "on-premises IPv4 CIDR(s) allowed to reach the endpoint on TCP 443 (CloudFormation: one CIDR)",
  },
  {
    key: "PrivateDnsEnabled",
    on: ["context", "cfn", "tf"],
    type: "boolean",
    default: true,
    description:
      "private DNS on the new endpoint: servers use the API's own name, and the VPC reaches every API Gateway API through it ([Private DNS](deploy.md#private-dns-on-or-off))",
  },
  {
    key: "ApiAllowedSourceIpRanges",
    on: ["context", "tf"],
    type: "list",
    description: "also deny API calls whose `aws:VpcSourceIp` is outside these IPv4 CIDRs",
  },
  {
    key: "VpcEndpointAllowedApiIds",
    on: ["context", "tf"],
    type: "list",
    pattern: "^[a-z0-9]{10}$",
    defaultText: "none (this account's APIs)",
    description: "REST API ids the new endpoint may invoke",
  },
  {
    key: "CloudwatchLogRoleArn",
    on: ["context", "cfn", "tf"],
    type: "string",
    defaultText: "none: a role is created and set for the account",
    description:
      "the account's API Gateway logging role ([Logging role](deploy.md#the-accounts-logging-role))",
  },
  {
    key: "PoolRoleArns",
    on: ["cfn"],
    type: "list",
    description:
      "ARNs of the roles your pools name in `iamRole`: the broker may pass only these and the node role (the CDK app and Terraform read them from the pools)",
  },
  {
    key: "PoolTagKeys",
    on: ["cfn"],
    type: "list",
    description:
      "tag keys your pools set: activations may carry only these and `activation-broker:*` (the CDK app and Terraform read them from the pools)",
  },

  {
    key: "LogLevel",
    on: ["context", "tf"],
    type: "enum",
    values: ["DEBUG", "INFO", "WARN", "ERROR"],
    default: "INFO",
    description: "log level of both functions (sets `POWERTOOLS_LOG_LEVEL`)",
  },
  {
    key: "LogRetentionDays",
    on: ["context", "cfn", "tf"],
    type: "enum",
    unit: "days",
    values: [
      1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
    ],
    default: 365,
    description:
      "days to keep the function's, the janitor's and the API's logs: a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, … 3653)",
  },

  {
    key: "ThrottlingRateLimit",
    on: ["context", "cfn", "tf"],
    type: "integer",
    unit: "requests per second",
    min: 1,
    max: 10_000,
    default: 50,
    description:
      "requests per second the API accepts from all servers together, more get 429; its burst is `ReservedConcurrency`, or this rate when that is 0",
  },
  {
    key: "ReservedConcurrency",
    on: ["context", "cfn", "tf"],
    type: "integer",
    min: 0,
    max: 10_000,
    default: 100,
    description:
      "concurrent executions reserved for the broker, also its ceiling; `0` reserves none ([Limits](deploy.md#what-limits-a-caller-on-aws))",
  },

  {
    key: "TableDeletionProtection",
    on: ["context", "tf"],
    type: "boolean",
    default: true,
    description: "DynamoDB deletion protection; while on, deleting the stack or the module keeps the table",
  },

  {
    key: "BrokerZip",
    on: ["tf"],
    type: "string",
    defaultText: "required",
    description: "the broker function's zip: `npx tsx deploy/terraform/package.ts` writes it",
  },
  {
    key: "JanitorZip",
    on: ["tf"],
    type: "string",
    defaultText: "required",
    description: "the janitor function's zip, written beside it",
  },
  {
    key: "LambdaRuntime",
    on: ["tf"],
    type: "enum",
    values: ["nodejs24.x", "nodejs22.x"],
    default: "nodejs24.x",
    description:
      "runtime of both functions; `nodejs22.x` only lets hashicorp/aws 5.x plan (the CDK app deploys `nodejs24.x`)",
  },
];

/**
 * Names an older release understood and this one does not: each surface that meets one says what
 * became of it instead of "unknown" (CHANGELOG.md has the reasons).
 */
export const RETIRED: Readonly<Record<string, string>> = {
  BROKER_CONFIG_FILE: "now BROKER_POOLS, which takes a file's path too",
  PoolsFile: "now Pools, which takes a file's path too",
  BROKER_ROTATION_WAIT_MS: "now BROKER_ROTATION_WAIT_SECONDS, in seconds",
  BROKER_KEEP_ALIVE_TIMEOUT_MS: "now BROKER_KEEP_ALIVE_TIMEOUT_SECONDS, in seconds",
  BROKER_HEADERS_TIMEOUT_MS: "removed: the headers timeout is 10 s",
  BROKER_REQUEST_TIMEOUT_MS: "removed: the request timeout is 30 s",
  BROKER_IDLE_TIMEOUT_MS: "removed: a silent new socket is closed after 5 s",
  BROKER_RATE_LIMIT_BURST: "removed: the burst is ten seconds of BROKER_RATE_LIMIT_PER_SECOND",
  BROKER_RATE_LIMIT_SOURCES: "removed: 10,000 source addresses are tracked",
  BROKER_MAX_CONNECTIONS_PER_SOURCE: "removed: one source may hold a tenth of BROKER_MAX_CONNECTIONS",
  LeaseSeconds:
    "removed from the deployment settings: the lease is 30 s (BROKER_LEASE_SECONDS stays, for tuning)",
  RotationWaitMs:
    "removed from the deployment settings: the wait is 5 s (BROKER_ROTATION_WAIT_SECONDS stays, for tuning)",
  ThrottlingBurstLimit:
    "removed: the stage's burst is ReservedConcurrency, or ThrottlingRateLimit when that is 0",
  JanitorRateMinutes: "removed: the janitor runs hourly",
  NodeRoleName: "renamed DefaultIamRole (default_iam_role in Terraform), the variable it sets",
  HybridNodesRoleName: "renamed HybridNodesRole, the variable it sets",
  ApiExecutionLogLevel:
    "removed: API Gateway's execution log is at ERROR, as the CloudFormation release has it",
  FunctionMemoryMB: "removed: the function has 256 MB, as the CloudFormation release has it",
  EnableXRay: "removed: X-Ray tracing is on, as the CloudFormation release and Control Tower's rules have it",
  BROKER_VPC_ENDPOINT_IDS: "renamed BROKER_VPC_ENDPOINT_FOR_API_GATEWAY, the deployment setting's name",
};

/** A pools document begins with `{`; anything else is the path of a file that holds one. */
export function isPoolsPath(value: string): boolean {
  return !value.trimStart().startsWith("{");
}

/** "AllowedIPRange" → ["Allowed", "IP", "Range"]: a run of capitals is one word (IP, MB). */
export function wordsOf(key: string): string[] {
  return key.match(/[A-Z]+(?![a-z])|[A-Z][a-z0-9]*/g) ?? [];
}

export function envName(key: string): string {
  return `BROKER_${wordsOf(key).join("_").toUpperCase()}`;
}

export function terraformName(key: string): string {
  return wordsOf(key).join("_").toLowerCase();
}

/** The CDK context key and the CloudFormation parameter are the key itself. */
export function contextKey(key: string): string {
  return key;
}

export function namesOn(surface: Surface): string[] {
  const name = { env: envName, context: contextKey, cfn: contextKey, tf: terraformName }[surface];
  return SETTINGS.filter((s) => s.on.includes(surface)).map((s) => name(s.key));
}

export function setting(key: string): Setting {
  const found = SETTINGS.find((s) => s.key === key);
  if (!found) throw new Error(`No setting ${key} in src/settings-schema.ts`);
  return found;
}
