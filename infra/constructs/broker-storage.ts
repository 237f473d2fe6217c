import { Aws, Duration, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import { AttributeType, BillingMode, Table, TableEncryption } from "aws-cdk-lib/aws-dynamodb";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import { POOL_KEY_ATTRIBUTE } from "../../src/aws/naming";
import { denyGrantsExceptForAwsServices } from "./parameter-store-key";

/**
 * The broker's state and its logs: the pool table, and the key and log groups that hold what the
 * function and the API write. The Activation Codes themselves are in Parameter Store under the
 * codes key (parameter-store-key.ts), not here.
 *
 * Builders, not constructs: each adds its resources to the `ActivationBroker` it is given, so the
 * construct paths, and with them the logical IDs of deployed stacks, stay what they were.
 */
export interface BrokerStorageOptions {
  /** @default true; when false the table is also destroyed with the stack */
  readonly tableDeletionProtection?: boolean;
  /** Retention of the function log and the API access log. @default RetentionDays.ONE_YEAR */
  readonly logRetention?: RetentionDays;
}

/** One item per pool: current activation, standbys, slots and the rotation lease. */
export function addPoolTable(scope: Construct, options: BrokerStorageOptions): Table {
  const protect = options.tableDeletionProtection ?? true;
  return new Table(scope, "PoolTable", {
    partitionKey: { name: POOL_KEY_ATTRIBUTE, type: AttributeType.STRING },
    billingMode: BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    // AWS managed key, not the codes key: that one is restricted to Systems Manager.
    encryption: TableEncryption.AWS_MANAGED,
    deletionProtection: protect,
    removalPolicy: protect ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
  });
}

export interface BrokerLogs {
  /** Encrypts the log groups; the janitor's too. */
  readonly key: Key;
  readonly functionLogGroup: LogGroup;
  readonly accessLogGroup: LogGroup;
}

/** The logs key, then the function's log group and the API's access log group, both under it. */
export function addBrokerLogs(scope: Construct, options: BrokerStorageOptions): BrokerLogs {
  const retention = options.logRetention ?? RetentionDays.ONE_YEAR;
  const key = addLogsKey(scope);
  const functionLogGroup = new LogGroup(scope, "FunctionLogs", { retention, encryptionKey: key });
  const accessLogGroup = new LogGroup(scope, "ApiAccessLogs", { retention, encryptionKey: key });
  if (retention < RetentionDays.ONE_YEAR) {
    for (const group of [functionLogGroup, accessLogGroup]) {
      Validations.of(group).acknowledge({
        id: "cloudwatch_log_group_retention_period_check",
        reason:
          "CT.CLOUDWATCH.PR.2: a retention under a year was chosen on purpose by this deployment's settings (LogRetentionDays).",
      });
    }
  }
  return { key, functionLogGroup, accessLogGroup };
}

/**
 * Customer managed key for the two log groups (Control Tower's CT.CLOUDWATCH.PR.3). Not the codes
 * key: that one is usable through Systems Manager only. Retained like the log groups it protects.
 */
function addLogsKey(scope: Construct): Key {
  const key = new Key(scope, "LogsKey", {
    description: `Encrypts the activation broker's log groups (${Stack.of(scope).stackName})`,
    enableKeyRotation: true,
    pendingWindow: Duration.days(30),
    removalPolicy: RemovalPolicy.RETAIN,
  });
  key.addToResourcePolicy(
    new PolicyStatement({
      sid: "AllowCloudWatchLogsForThisAccountsLogGroups",
      principals: [new ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
      actions: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
      resources: ["*"],
      conditions: {
        ArnLike: {
          "kms:EncryptionContext:aws:logs:arn": `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:*`,
        },
      },
    }),
  );
  denyGrantsExceptForAwsServices(key);
  return key;
}
