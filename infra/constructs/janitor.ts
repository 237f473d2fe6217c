import { fileURLToPath } from "node:url";
import { Aws, Duration, Validations } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import { Policy, PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Architecture, Runtime, Tracing } from "aws-cdk-lib/aws-lambda";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { NodejsFunction } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import type { PoolConfig } from "../../src/core/pool-config";
import { FUNCTION_BUNDLING, nagText } from "./broker-function";
import { TAG_DEPLOYMENT } from "../../src/core/vend-policy";

export const JANITOR_ENTRY = fileURLToPath(new URL("../../src/entry/janitor.ts", import.meta.url));

export interface JanitorProps {
  readonly table: ITable;
  readonly parameterPrefix: string;
  /** The broker function's BROKER_* environment: the janitor reads the same settings. */
  readonly environment: Readonly<Record<string, string>>;
  /** The validated pools: their hygiene settings decide which node actions the role may take. */
  readonly pools: ReadonlyMap<string, PoolConfig>;
  /** How often the janitor runs. @default Duration.hours(1) */
  readonly schedule?: Duration;
  /** @default RetentionDays.ONE_YEAR */
  readonly logRetention?: RetentionDays;
  /** Encrypts the janitor's log group (the broker's logs key). */
  readonly logsKey: IKey;
  /** X-Ray on the function. @default true */
  readonly tracing?: boolean;
  /**
   * Concurrency reserved for the janitor; 0 reserves none, for accounts whose quota leaves no room
   * for a reservation (Lambda keeps 100 unreserved). @default 1 (one run at a time)
   */
  readonly reservedConcurrency?: 0 | 1;
  /** @default src/entry/janitor.ts */
  readonly entry?: string;
}

/**
 * The scheduled janitor: a Lambda function on an EventBridge rate with its own role, holding the
 * inventory reads the broker's role no longer has and only the deletions its work needs.
 * Node actions (Name tags, deregistering duplicates) are granted only when a pool opts in, and
 * only on nodes that carry this deployment's tag.
 */
export class Janitor extends Construct {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly rule: Rule;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: JanitorProps) {
    super(scope, id);
    const retention = props.logRetention ?? RetentionDays.ONE_YEAR;
    this.logGroup = new LogGroup(this, "Logs", { retention, encryptionKey: props.logsKey });
    this.role = new Role(this, "Role", {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: "Activation broker janitor: deletes spent activations and tidies the fleet",
    });
    this.logGroup.grantWrite(this.role);

    const { BROKER_PUBLIC_URL: _url, ...environment } = props.environment;
    this.function = new NodejsFunction(this, "Function", {
      entry: props.entry ?? JANITOR_ENTRY,
      handler: "handler",
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: 256,
      // Paging through thousands of activations and nodes at SSM's API rates takes minutes.
      timeout: Duration.minutes(5),
      // One run at a time: two janitors would race each other's deletions for nothing.
      ...(props.reservedConcurrency !== 0 && { reservedConcurrentExecutions: 1 }),
      role: this.role,
      logGroup: this.logGroup,
      tracing: (props.tracing ?? true) ? Tracing.ACTIVE : Tracing.DISABLED,
      description: "SSM hybrid activation broker: janitor",
      environment: { ...environment, POWERTOOLS_SERVICE_NAME: "activation-broker-janitor" },
      bundling: FUNCTION_BUNDLING,
    });

    this.rule = new Rule(this, "Schedule", {
      description: "Runs the activation broker's janitor",
      schedule: Schedule.rate(props.schedule ?? Duration.hours(1)),
      targets: [new LambdaFunction(this.function, { retryAttempts: 0 })],
    });

    this.grant(props);
    this.acknowledgeGuardFindings(retention, props.tracing ?? true);
  }

  /** cfn-guard's Control Tower rules, with the same reasons as the broker function's. */
  private acknowledgeGuardFindings(retention: RetentionDays, tracing: boolean): void {
    Validations.of(this.function).acknowledge({
      id: "lambda_inside_vpc_check",
      reason:
        "CT.LAMBDA.PR.3: the janitor has no inbound network path (EventBridge invokes it) and calls only AWS APIs; inside a VPC it would need NAT or interface endpoints per deployment for no gain in isolation.",
    });
    if (retention < RetentionDays.ONE_YEAR) {
      Validations.of(this.logGroup).acknowledge({
        id: "cloudwatch_log_group_retention_period_check",
        reason:
          "CT.CLOUDWATCH.PR.2: a retention under a year was chosen on purpose by this deployment's settings (LogRetentionDays).",
      });
    }
    if (tracing) {
      Validations.of(this.role).acknowledge({
        id: "AwsSolutions-IAM5[Resource::*]",
        reason: "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions.",
      });
    }
  }

  private grant(props: JanitorProps): void {
    const { ACCOUNT_ID: account, REGION: region, PARTITION: partition } = Aws;
    const prefixPath = props.parameterPrefix.slice(1);
    const deployment = props.environment.BROKER_DEPLOYMENT ?? "";
    const pools = [...props.pools.values()];
    const tagsNames = pools.some((p) => p.hygiene?.nameTag === true);
    const deregisters = pools.some((p) => p.hygiene?.deregisterDuplicatesAfterDays !== undefined);
    const ourNodes = `arn:${partition}:ssm:${region}:${account}:managed-instance/*`;
    const onlyOurNodes = { StringEquals: { [`ssm:resourceTag/${TAG_DEPLOYMENT}`]: deployment } };

    const statements = [
      new PolicyStatement({
        sid: "ListPoolsAndRetire",
        actions: ["dynamodb:Scan", "dynamodb:UpdateItem"],
        resources: [props.table.tableArn],
      }),
      new PolicyStatement({
        sid: "ListCodesWithoutDecrypting",
        actions: ["ssm:GetParametersByPath"],
        resources: [`arn:${partition}:ssm:${region}:${account}:parameter/${prefixPath}`],
      }),
      new PolicyStatement({
        sid: "DeleteCodes",
        actions: ["ssm:DeleteParameter"],
        resources: [`arn:${partition}:ssm:${region}:${account}:parameter/${prefixPath}/*`],
      }),
      // No resource type and no condition keys for these: "*" is the only form AWS accepts.
      new PolicyStatement({
        sid: "ListAndDeleteActivations",
        actions: ["ssm:DescribeActivations", "ssm:DeleteActivation", "ssm:DescribeInstanceInformation"],
        resources: ["*"],
      }),
      ...(tagsNames
        ? [
            new PolicyStatement({
              sid: "NameOurNodes",
              actions: ["ssm:AddTagsToResource"],
              resources: [ourNodes],
              conditions: { ...onlyOurNodes, "ForAllValues:StringEquals": { "aws:TagKeys": ["Name"] } },
            }),
          ]
        : []),
      ...(deregisters
        ? [
            new PolicyStatement({
              sid: "DeregisterOurDuplicates",
              actions: ["ssm:DeregisterManagedInstance"],
              resources: [ourNodes],
              conditions: onlyOurNodes,
            }),
          ]
        : []),
    ];
    const policy = new Policy(this, "Policy", { statements });
    policy.attachToRole(this.role);
    Validations.of(policy).acknowledge(
      {
        id: "AwsSolutions-IAM5[Resource::*]",
        reason:
          "ssm:DescribeActivations, ssm:DeleteActivation and ssm:DescribeInstanceInformation have no resource type in the IAM Service Authorization Reference, so only Resource '*' is accepted.",
      },
      {
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/${nagText(this, props.parameterPrefix).slice(1)}/*]`,
        reason:
          "Parameter names end in activation ids that exist only at run time; the wildcard is confined to this deployment's Parameter Store prefix.",
      },
      {
        id: "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:managed-instance/*]",
        reason:
          "Node ids exist only at run time; the statement is conditioned on ssm:resourceTag/activation-broker:deployment, so only this deployment's nodes qualify.",
      },
    );
  }
}
