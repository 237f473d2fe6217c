import { fileURLToPath } from "node:url";
import { Aws, Duration, Fn, Stack, Validations } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Policy, PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { Architecture, Runtime, Tracing } from "aws-cdk-lib/aws-lambda";
import {
  type BundlingOptions,
  LogLevel as BundlingLogLevel,
  NodejsFunction,
  OutputFormat,
} from "aws-cdk-lib/aws-lambda-nodejs";
import type { ILogGroup } from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import { RESERVED_TAG_PREFIX } from "../../src/core/pool-config";
import { AGENT_SCRIPTS_BUNDLING } from "../../scripts/bundling";
import { SSM_CRYPTO_ACTIONS, ssmViaService } from "./parameter-store-key";
import { StandbyRefill } from "./standby-refill";

/**
 * The broker function: its role, its environment (the BROKER_* settings the janitor shares), its
 * standby self-invocation and the narrowest IAM policy that lets it vend.
 *
 * Builders, not constructs: each adds its resources to the `ActivationBroker` it is given, so the
 * construct paths, and with them the logical IDs of deployed stacks, stay what they were.
 */

/** How every function of the app is bundled (the broker's and the janitor's alike). */
export const FUNCTION_BUNDLING: BundlingOptions = {
  // Local esbuild only: no Docker on build machines or in CI.
  forceDockerBundling: false,
  minify: true,
  sourceMap: true,
  // Line mapping without shipping the sources keeps the bundle small.
  sourcesContent: false,
  target: "node24",
  // CJS: the bundled SDK v3 still has CommonJS dependencies whose require() calls an ESM
  // bundle cannot serve without a createRequire banner.
  format: OutputFormat.CJS,
  // Prefer the ESM builds of dependencies: they tree-shake far better.
  mainFields: ["module", "main"],
  // Bundle the SDK v3 clients rather than use the runtime's copy, so the version is pinned.
  externalModules: [],
  // esbuild's per-file size table on every synth is noise; warnings and errors still show.
  logLevel: BundlingLogLevel.WARNING,
  // The bootstrap scripts of agent/, embedded at build time (src/http/agent-scripts.ts).
  ...AGENT_SCRIPTS_BUNDLING,
  // That module's file-read fallback (tsx, vitest) is dead code in a bundle, and its import.meta
  // the only one in src/ (test/agent/embedded-scripts.test.ts keeps it so): not a CJS problem.
  esbuildArgs: { "--log-override:empty-import-meta": "silent" },
};

/** The foundation's Lambda adapter: the only broker logic the function runs. */
export const DEFAULT_HANDLER_ENTRY = fileURLToPath(new URL("../../src/entry/lambda.ts", import.meta.url));

/** Tag the broker puts on every activation it creates; IAM only lets it create activations so tagged. */
export const DEPLOYMENT_TAG = `${RESERVED_TAG_PREFIX}deployment`;

export type LogLevel = "DEBUG" | "INFO" | "WARN" | "ERROR";

export interface BrokerFunctionOptions {
  /** @default "INFO" */
  readonly logLevel?: LogLevel;
  /**
   * Concurrent executions reserved for (and capping) the function; 0 reserves none. Kept at the
   * stage's burst so API Gateway's 429 is what a flooding caller sees, not Lambda's throttle
   * (which a proxy integration turns into a 500). @default 100
   */
  readonly reservedConcurrency?: number;
  /** X-Ray on the stage and the function. @default true */
  readonly tracing?: boolean;
  /** @default 256 */
  readonly memorySize?: number;
  /** Value of the `activation-broker:deployment` tag. @default `<stack name>:<stack uuid>` */
  readonly deploymentId?: string;
  /** @default src/entry/lambda.ts */
  readonly entry?: string;
}

export interface BrokerFunctionProps extends BrokerFunctionOptions {
  /** From `addFunctionRole`: made before the API, so the API's resources follow it in the template. */
  readonly role: Role;
  readonly logGroup: ILogGroup;
  readonly table: ITable;
  /** The codes key. */
  readonly kmsKey: IKey;
  readonly parameterPrefix: string;
  readonly nodeRoleName: string;
  readonly hybridNodesRoleName?: string;
  /** The pools document (`BROKER_POOLS`). */
  readonly poolsDocument: string;
  /** The API's URL, which the function puts into the install scripts it serves. */
  readonly publicUrl: string;
  readonly vpcEndpointIds: readonly string[];
  /** Role ARNs the function may pass to SSM (brokerPools). */
  readonly passRoleArns: string[];
  /** Tag keys the function may put on activations (brokerPools). */
  readonly allowedTagKeys: string[];
}

export interface BrokerFunction {
  readonly function: NodejsFunction;
  /** The function's BROKER_* environment, which the janitor shares. */
  readonly environment: Readonly<Record<string, string>>;
}

/** The function's execution role, allowed to write its own log group and nothing else yet. */
export function addFunctionRole(scope: Construct, logGroup: ILogGroup): Role {
  const role = new Role(scope, "FunctionRole", {
    assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
    description: "Activation broker function: vends SSM hybrid activations",
  });
  // Not AWSLambdaBasicExecutionRole: that one may write to every log group in the account.
  logGroup.grantWrite(role);
  return role;
}

export function addBrokerFunction(scope: Construct, props: BrokerFunctionProps): BrokerFunction {
  const tracing = props.tracing ?? true;
  const deploymentId = props.deploymentId ?? defaultDeploymentId();
  const environment = {
    BROKER_TABLE_NAME: props.table.tableName,
    BROKER_PARAMETER_PREFIX: props.parameterPrefix,
    BROKER_KMS_KEY_ID: props.kmsKey.keyArn,
    BROKER_DEFAULT_IAM_ROLE: props.nodeRoleName,
    ...(props.hybridNodesRoleName !== undefined && { BROKER_HYBRID_NODES_ROLE: props.hybridNodesRoleName }),
    BROKER_POOLS: props.poolsDocument,
    BROKER_DEPLOYMENT: deploymentId,
    BROKER_PUBLIC_URL: props.publicUrl,
    // The alias names through these endpoints are this API's own names too (see lambda.ts).
    BROKER_VPC_ENDPOINT_FOR_API_GATEWAY: Fn.join(",", [...props.vpcEndpointIds]),
    POWERTOOLS_SERVICE_NAME: "activation-broker",
    POWERTOOLS_LOG_LEVEL: props.logLevel ?? "INFO",
    NODE_OPTIONS: "--enable-source-maps",
  };
  const fn = new NodejsFunction(scope, "Function", {
    entry: props.entry ?? DEFAULT_HANDLER_ENTRY,
    handler: "handler",
    runtime: Runtime.NODEJS_24_X,
    ...(props.reservedConcurrency !== 0 && {
      reservedConcurrentExecutions: props.reservedConcurrency ?? 100,
    }),
    architecture: Architecture.ARM_64,
    memorySize: props.memorySize ?? 256,
    // Under API Gateway's 29 s integration limit, with room for a rotation wait plus SDK retries.
    timeout: Duration.seconds(25),
    role: props.role,
    logGroup: props.logGroup,
    tracing: tracing ? Tracing.ACTIVE : Tracing.DISABLED,
    description: "SSM hybrid activation broker",
    environment,
    bundling: FUNCTION_BUNDLING,
  });

  // Standby activations are made by an asynchronous self-invocation, off the response path.
  new StandbyRefill(scope, "StandbyRefill", { function: fn, role: props.role });
  addBrokerPolicy(scope, props, deploymentId);

  if (tracing) {
    Validations.of(props.role).acknowledge({
      id: "AwsSolutions-IAM5[Resource::*]",
      reason: "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions.",
    });
  }
  // cfn-guard, Control Tower rules (docs/deploy.md lists these with the cdk-nag ones).
  Validations.of(fn).acknowledge({
    id: "lambda_inside_vpc_check",
    reason:
      "CT.LAMBDA.PR.3: the function has no inbound network path (API Gateway invokes it) and calls only AWS APIs; inside a VPC it would need NAT or five interface endpoints (DynamoDB, SSM, KMS, Logs, X-Ray) per deployment for no gain in isolation.",
  });
  return { function: fn, environment };
}

/** What a vend needs and no more; a policy of its own, so its findings are acknowledged on it alone. */
function addBrokerPolicy(scope: Construct, props: BrokerFunctionProps, deploymentId: string): Policy {
  const { account, region, partition } = {
    account: Aws.ACCOUNT_ID,
    region: Aws.REGION,
    partition: Aws.PARTITION,
  };
  const prefixPath = props.parameterPrefix.slice(1); // ARNs carry the name without its leading slash
  const statements = [
    new PolicyStatement({
      sid: "PoolState",
      // No Scan: listing pools is the janitor's and the CLI's (infra/constructs/janitor.ts).
      actions: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
      resources: [props.table.tableArn],
    }),
    new PolicyStatement({
      sid: "ActivationCodes",
      actions: ["ssm:PutParameter", "ssm:GetParameters", "ssm:DeleteParameter"],
      resources: [`arn:${partition}:ssm:${region}:${account}:parameter/${prefixPath}/*`],
    }),
    new PolicyStatement({
      sid: "EncryptCodesThroughParameterStoreOnly",
      actions: [...SSM_CRYPTO_ACTIONS],
      resources: [props.kmsKey.keyArn],
      conditions: { StringEquals: { "kms:ViaService": ssmViaService() } },
    }),
    new PolicyStatement({
      sid: "PassNodeRoleToSsmOnly",
      actions: ["iam:PassRole"],
      resources: props.passRoleArns,
      conditions: { StringEquals: { "iam:PassedToService": "ssm.amazonaws.com" } },
    }),
    // CreateActivation has no resource type (the Service Authorization Reference lists none), so
    // Resource must be "*"; its aws:RequestTag / aws:TagKeys keys let us insist that every
    // activation carries this deployment's tag and only the tag keys our pools define.
    new PolicyStatement({
      sid: "CreateTaggedActivationsOnly",
      actions: ["ssm:CreateActivation", "ssm:AddTagsToResource"],
      resources: ["*"],
      conditions: {
        StringEquals: { [`aws:RequestTag/${DEPLOYMENT_TAG}`]: deploymentId },
        "ForAllValues:StringLike": { "aws:TagKeys": props.allowedTagKeys },
      },
    }),
    // A vend deletes only the activation of a rotation it lost, and describes only the one a
    // rotation replaces (the slot-theft check, src/core/reconcile.ts); listing them is the
    // janitor's. Neither action has a resource type or condition key: "*" is the only form.
    new PolicyStatement({
      sid: "DescribeOutgoingAndDeleteLostActivations",
      actions: ["ssm:DescribeActivations", "ssm:DeleteActivation"],
      resources: ["*"],
    }),
  ];
  const policy = new Policy(scope, "BrokerPolicy", { statements });
  policy.attachToRole(props.role);
  Validations.of(policy).acknowledge(
    {
      id: "AwsSolutions-IAM5[Resource::*]",
      reason:
        "ssm:CreateActivation, ssm:DescribeActivations and ssm:DeleteActivation have no resource type in the IAM Service Authorization Reference, so only Resource '*' is accepted; CreateActivation (and the AddTagsToResource it implies) is conditioned on aws:RequestTag/activation-broker:deployment and aws:TagKeys.",
    },
    {
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/${nagText(scope, props.parameterPrefix).slice(1)}/*]`,
      reason:
        "Parameter names end in activation ids that exist only at run time; the wildcard is confined to this deployment's Parameter Store prefix.",
    },
  );
  return policy;
}

/** A value as cdk-nag prints it in finding ids: references become `<Name>`. */
export function nagText(scope: Construct, value: string): string {
  const render = (v: unknown): string => {
    if (typeof v === "string") return v;
    const o = v as Record<string, unknown>;
    if (typeof o.Ref === "string") return `<${o.Ref}>`;
    const join = o["Fn::Join"] as [string, unknown[]] | undefined;
    if (join) return join[1].map(render).join(join[0]);
    throw new Error(`nagText: cannot render ${JSON.stringify(v)}`);
  };
  return render(Stack.of(scope).resolve(value));
}

/** `<stack name>:<uuid of this stack instance>`: unique per deployment, readable in the console. */
function defaultDeploymentId(): string {
  return Fn.join(":", [Aws.STACK_NAME, Fn.select(2, Fn.split("/", Aws.STACK_ID))]);
}
