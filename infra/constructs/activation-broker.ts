import { fileURLToPath } from "node:url";
import { Aws, Duration, Fn, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import {
  AccessLogFormat,
  EndpointType,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  RestApi,
} from "aws-cdk-lib/aws-apigateway";
import { AttributeType, BillingMode, Table, TableEncryption } from "aws-cdk-lib/aws-dynamodb";
import { InterfaceVpcEndpoint } from "aws-cdk-lib/aws-ec2";
import {
  AnyPrincipal,
  Effect,
  ManagedPolicy,
  Policy,
  PolicyDocument,
  PolicyStatement,
  Role,
  ServicePrincipal,
} from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { Architecture, Runtime, Tracing } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { DEFAULT_PARAMETER_PREFIX, POOL_KEY_ATTRIBUTE, isValidParameterPrefix } from "../../src/aws/naming";
import { ConfigError } from "../../src/core/errors";
import { RESERVED_TAG_PREFIX, parsePools, poolsFileSchema } from "../../src/core/pool-config";
import { SSM_CRYPTO_ACTIONS, ssmViaService } from "./parameter-store-key";
import { StandbyRefill } from "./standby-refill";
import {
  HybridNodesRole,
  clustersNeedingHybridNodesRole,
  requireClustersInStackRegion,
} from "./hybrid-nodes-role";

/** The foundation's Lambda adapter: the only broker logic the function runs. */
export const DEFAULT_HANDLER_ENTRY = fileURLToPath(new URL("../../src/entry/lambda.ts", import.meta.url));

/** Tag the broker puts on every activation it creates; IAM only lets it create activations so tagged. */
export const DEPLOYMENT_TAG = `${RESERVED_TAG_PREFIX}deployment`;

/** Lambda rejects a function whose environment exceeds 4 KB in total; leave room for the rest. */
const MAX_POOLS_ENV_BYTES = 3072;

export type LogLevel = "DEBUG" | "INFO" | "WARN" | "ERROR";

export interface ActivationBrokerProps {
  /** Endpoints through which the private API may be invoked; anything else is denied. */
  readonly vpcEndpointIds: readonly string[];
  /** Customer managed key for the SecureString codes (ParameterStoreKey or an existing key). */
  readonly kmsKey: IKey;
  /** The pools document, `{"pools": {...}}`, validated here with the broker's own schema. @default {} */
  readonly pools?: unknown;
  /** @default "prod" */
  readonly stageName?: string;
  /** Narrow invocation further to these on-premises source ranges (`aws:VpcSourceIp`). @default none */
  readonly allowedSourceCidrs?: readonly string[];
  /** @default `/activation-broker/<stack name>`, so deployments never share codes or IAM scope */
  readonly parameterPrefix?: string;
  /** Existing service role for managed nodes; by default one is created. */
  readonly nodeRoleName?: string;
  /** Existing EKS hybrid nodes role for EKS pools without an iamRole; by default one is created. */
  readonly hybridNodesRoleName?: string;
  /** @default 30 */
  readonly leaseSeconds?: number;
  /** @default 5000 */
  readonly rotationWaitMs?: number;
  /** @default "INFO" */
  readonly logLevel?: LogLevel;
  /** Retention of the function log and the API access log. @default RetentionDays.THREE_MONTHS */
  readonly logRetention?: RetentionDays;
  /** API Gateway execution logging; never with data trace (it would log the codes). @default ERROR */
  readonly executionLogLevel?: MethodLoggingLevel;
  /** Steady-state requests per second for the stage. @default 50 */
  readonly throttlingRateLimit?: number;
  /** @default 100 */
  readonly throttlingBurstLimit?: number;
  /** X-Ray on the stage and the function. @default false */
  readonly tracing?: boolean;
  /**
   * Create the role API Gateway uses to write logs and set it as the ACCOUNT's API Gateway
   * CloudWatch role (a region-wide setting shared by every API). Off by default: most accounts
   * have it already, and changing it silently is what the reference did wrong.
   * @default false
   */
  readonly apiGatewayCloudWatchRole?: boolean;
  /** @default true; when false the table is also destroyed with the stack */
  readonly tableDeletionProtection?: boolean;
  /** @default 256 */
  readonly memorySize?: number;
  /** Value of the `activation-broker:deployment` tag. @default `<stack name>:<stack uuid>` */
  readonly deploymentId?: string;
  /** @default src/entry/lambda.ts */
  readonly entry?: string;
}

/**
 * Step 3 of the reference walkthrough: the private REST API, the broker function, its table and
 * the service role managed nodes assume, each with the narrowest permissions AWS allows.
 */
export class ActivationBroker extends Construct {
  readonly api: RestApi;
  readonly function: NodejsFunction;
  readonly table: Table;
  readonly nodeRoleName: string;
  /** The role of EKS pools that name none, when there is one (docs/eks.md). */
  readonly hybridNodesRoleName?: string;
  readonly parameterPrefix: string;
  /** `https://<api>.execute-api.<region>.amazonaws.com/<stage>`, no trailing slash. */
  readonly url: string;
  readonly functionLogGroup: LogGroup;
  readonly accessLogGroup: LogGroup;
  private brokerPolicy?: Policy;

  constructor(scope: Construct, id: string, props: ActivationBrokerProps) {
    super(scope, id);
    const stack = Stack.of(this);
    if (props.vpcEndpointIds.length === 0) {
      throw new ConfigError(
        "Invalid broker configuration: vpcEndpointIds: at least one VPC endpoint is required",
      );
    }
    const stageName = props.stageName ?? "prod";
    this.parameterPrefix = props.parameterPrefix ?? `${DEFAULT_PARAMETER_PREFIX}/${stack.stackName}`;
    if (!isValidParameterPrefix(this.parameterPrefix)) {
      throw new ConfigError(
        `Invalid broker configuration: parameterPrefix: '${this.parameterPrefix}' is not an absolute path`,
      );
    }

    // Node role first: pools without an iamRole default to it.
    const nodeRole = props.nodeRoleName ? undefined : this.createNodeRole();
    this.nodeRoleName = props.nodeRoleName ?? nodeRole!.roleName;

    // The broker's own validation, run at synth: a bad pool fails `cdk synth`, not the first vend.
    const eksClusters = clustersNeedingHybridNodesRole(props.pools);
    this.hybridNodesRoleName =
      props.hybridNodesRoleName ??
      (eksClusters.length > 0
        ? new HybridNodesRole(this, "HybridNodesRole", { clusterArns: eksClusters }).role.roleName
        : undefined);
    const pools = parsePools(props.pools ?? {}, {
      iamRole: this.nodeRoleName,
      eksIamRole: this.hybridNodesRoleName,
    });
    requireClustersInStackRegion(this, pools);
    const poolsEnv = JSON.stringify(poolsFileSchema.parse(props.pools ?? {}));
    if (Buffer.byteLength(poolsEnv) > MAX_POOLS_ENV_BYTES) {
      throw new ConfigError(
        `Invalid pool configuration: pools: ${Buffer.byteLength(poolsEnv)} bytes of JSON exceed the ${MAX_POOLS_ENV_BYTES} bytes a Lambda environment leaves for them`,
      );
    }
    const poolRoleNames = [...new Set([...pools.values()].map((p) => p.iamRole))];
    const poolTagKeys = [...new Set([...pools.values()].flatMap((p) => Object.keys(p.tags)))].sort();

    this.table = new Table(this, "PoolTable", {
      partitionKey: { name: POOL_KEY_ATTRIBUTE, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // AWS managed key, not the codes key: that one is restricted to Systems Manager.
      encryption: TableEncryption.AWS_MANAGED,
      deletionProtection: props.tableDeletionProtection ?? true,
      removalPolicy: (props.tableDeletionProtection ?? true) ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });

    const retention = props.logRetention ?? RetentionDays.THREE_MONTHS;
    this.functionLogGroup = new LogGroup(this, "FunctionLogs", { retention });
    this.accessLogGroup = new LogGroup(this, "ApiAccessLogs", { retention });

    const role = new Role(this, "FunctionRole", {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: "Activation broker function: vends SSM hybrid activations",
    });
    // Not AWSLambdaBasicExecutionRole: that one may write to every log group in the account.
    this.functionLogGroup.grantWrite(role);

    this.api = new RestApi(this, "Api", {
      // Names need not be unique in API Gateway; the stack name just makes the console readable.
      restApiName: `${stack.stackName}-broker`,
      description: `SSM hybrid activation broker (${stack.stackName})`,
      endpointConfiguration: {
        types: [EndpointType.PRIVATE],
        vpcEndpoints: props.vpcEndpointIds.map((vpce, i) =>
          InterfaceVpcEndpoint.fromInterfaceVpcEndpointAttributes(this, `Vpce${i}`, {
            vpcEndpointId: vpce,
            port: 443,
          }),
        ),
      },
      policy: this.resourcePolicy(props.vpcEndpointIds, props.allowedSourceCidrs ?? []),
      cloudWatchRole: props.apiGatewayCloudWatchRole ?? false,
      deployOptions: {
        stageName,
        accessLogDestination: new LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: props.executionLogLevel ?? MethodLoggingLevel.ERROR,
        // Data trace logs full responses, i.e. Activation Codes (I6): never.
        dataTraceEnabled: false,
        metricsEnabled: true,
        tracingEnabled: props.tracing ?? false,
        throttlingRateLimit: props.throttlingRateLimit ?? 50,
        throttlingBurstLimit: props.throttlingBurstLimit ?? 100,
      },
      // No CORS: callers are servers with curl/PowerShell, never browsers.
    });
    // Built by hand, not api.url: that refers to the stage, which depends on the methods, which
    // depend on the function, whose environment needs the URL — a cycle.
    this.url = `https://${this.api.restApiId}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}/${stageName}`;

    this.function = new NodejsFunction(this, "Function", {
      entry: props.entry ?? DEFAULT_HANDLER_ENTRY,
      handler: "handler",
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      // Under API Gateway's 29 s integration limit, with room for a rotation wait plus SDK retries.
      timeout: Duration.seconds(25),
      role,
      logGroup: this.functionLogGroup,
      tracing: props.tracing ? Tracing.ACTIVE : Tracing.DISABLED,
      description: "SSM hybrid activation broker",
      environment: {
        BROKER_TABLE_NAME: this.table.tableName,
        BROKER_PARAMETER_PREFIX: this.parameterPrefix,
        BROKER_KMS_KEY_ID: props.kmsKey.keyArn,
        BROKER_DEFAULT_IAM_ROLE: this.nodeRoleName,
        ...(this.hybridNodesRoleName !== undefined && { BROKER_HYBRID_NODES_ROLE: this.hybridNodesRoleName }),
        BROKER_POOLS: poolsEnv,
        BROKER_DEPLOYMENT: props.deploymentId ?? defaultDeploymentId(),
        BROKER_LEASE_SECONDS: String(props.leaseSeconds ?? 30),
        BROKER_ROTATION_WAIT_MS: String(props.rotationWaitMs ?? 5000),
        BROKER_PUBLIC_URL: this.url,
        POWERTOOLS_SERVICE_NAME: "activation-broker",
        POWERTOOLS_LOG_LEVEL: props.logLevel ?? "INFO",
        NODE_OPTIONS: "--enable-source-maps",
      },
      bundling: {
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
      },
    });

    // Standby activations are made by an asynchronous self-invocation, off the response path.
    new StandbyRefill(this, "StandbyRefill", { function: this.function, role });

    this.grantBrokerPermissions(role, {
      kmsKey: props.kmsKey,
      deploymentId: props.deploymentId ?? defaultDeploymentId(),
      passRoleNames: poolRoleNames,
      allowedTagKeys: [`${RESERVED_TAG_PREFIX}*`, ...poolTagKeys],
    });

    this.addRoutes([...pools.values()].some((p) => p.eks));
    this.acknowledgeFindings(role, nodeRole, props);
  }

  /** Allow through the named endpoints, deny everything else; optionally narrow to source ranges. */
  private resourcePolicy(vpcEndpointIds: readonly string[], sourceCidrs: readonly string[]): PolicyDocument {
    const statements = [
      new PolicyStatement({
        sid: "AllowInvoke",
        principals: [new AnyPrincipal()],
        actions: ["execute-api:Invoke"],
        resources: ["execute-api:/*"],
      }),
      new PolicyStatement({
        sid: "DenyUnlessThroughVpcEndpoint",
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ["execute-api:Invoke"],
        resources: ["execute-api:/*"],
        conditions: { StringNotEquals: { "aws:SourceVpce": [...vpcEndpointIds] } },
      }),
    ];
    if (sourceCidrs.length > 0) {
      statements.push(
        new PolicyStatement({
          sid: "DenyUnlessFromAllowedSourceRanges",
          effect: Effect.DENY,
          principals: [new AnyPrincipal()],
          actions: ["execute-api:Invoke"],
          resources: ["execute-api:/*"],
          conditions: { NotIpAddress: { "aws:VpcSourceIp": [...sourceCidrs] } },
        }),
      );
    }
    return new PolicyDocument({ statements });
  }

  /** The role SSM gives hybrid nodes; trust is limited to SSM acting for this account and region. */
  private createNodeRole(): Role {
    return new Role(this, "NodeRole", {
      description:
        "Service role assumed by on-premises managed nodes registered through the activation broker",
      assumedBy: new ServicePrincipal("ssm.amazonaws.com", {
        conditions: {
          // Confused-deputy protection, as the Systems Manager hybrid setup guide recommends.
          StringEquals: { "aws:SourceAccount": Aws.ACCOUNT_ID },
          ArnLike: { "aws:SourceArn": `arn:${Aws.PARTITION}:ssm:${Aws.REGION}:${Aws.ACCOUNT_ID}:*` },
        },
      }),
      managedPolicies: [ManagedPolicy.fromAwsManagedPolicyName("AmazonSSMManagedInstanceCore")],
    });
  }

  private grantBrokerPermissions(
    role: Role,
    opts: { kmsKey: IKey; deploymentId: string; passRoleNames: string[]; allowedTagKeys: string[] },
  ): void {
    const { account, region, partition } = {
      account: Aws.ACCOUNT_ID,
      region: Aws.REGION,
      partition: Aws.PARTITION,
    };
    const prefixPath = this.parameterPrefix.slice(1); // ARNs carry the name without its leading slash
    const statements = [
      new PolicyStatement({
        sid: "PoolState",
        actions: ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Scan"],
        resources: [this.table.tableArn],
      }),
      new PolicyStatement({
        sid: "ActivationCodes",
        actions: ["ssm:PutParameter", "ssm:GetParameter", "ssm:DeleteParameter", "ssm:GetParametersByPath"],
        resources: [
          // GetParametersByPath is authorised on the path itself, the others on each parameter.
          `arn:${partition}:ssm:${region}:${account}:parameter/${prefixPath}`,
          `arn:${partition}:ssm:${region}:${account}:parameter/${prefixPath}/*`,
        ],
      }),
      new PolicyStatement({
        sid: "EncryptCodesThroughParameterStoreOnly",
        actions: [...SSM_CRYPTO_ACTIONS],
        resources: [opts.kmsKey.keyArn],
        conditions: { StringEquals: { "kms:ViaService": ssmViaService() } },
      }),
      new PolicyStatement({
        sid: "PassNodeRoleToSsmOnly",
        actions: ["iam:PassRole"],
        resources: opts.passRoleNames.map((name) => `arn:${partition}:iam::${account}:role/${name}`),
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
          StringEquals: { [`aws:RequestTag/${DEPLOYMENT_TAG}`]: opts.deploymentId },
          "ForAllValues:StringLike": { "aws:TagKeys": opts.allowedTagKeys },
        },
      }),
      // Neither action has a resource type or condition key: "*" is the only form AWS accepts.
      new PolicyStatement({
        sid: "DescribeAndDeleteActivations",
        actions: ["ssm:DescribeActivations", "ssm:DeleteActivation"],
        resources: ["*"],
      }),
    ];
    // A separate policy, so the findings it must carry are acknowledged on it alone.
    const policy = new Policy(this, "BrokerPolicy", { statements });
    policy.attachToRole(role);
    this.brokerPolicy = policy;
  }

  private addRoutes(hasEksPools: boolean): void {
    const integration = new LambdaIntegration(this.function, { proxy: true, allowTestInvoke: false });
    // GET requests carry no body; body validation is on only so the validator counts as complete.
    const validator = this.api.addRequestValidator("RequestValidator", {
      validateRequestParameters: true,
      validateRequestBody: true,
    });
    // ANY, not GET: the broker itself answers other methods with 405 and an Allow header
    // (DESIGN.md §5); with GET-only methods API Gateway would answer a bare 403 instead.
    this.api.root.addMethod("ANY", integration, { requestValidator: validator });
    this.api.root
      .addResource("activations")
      .addResource("{pool}")
      .addMethod("ANY", integration, {
        requestValidator: validator,
        requestParameters: { "method.request.path.pool": true },
      });
    for (const script of ["install.sh", "install.ps1"]) {
      this.api.root.addResource(script).addMethod("ANY", integration, { requestValidator: validator });
    }
    if (hasEksPools) {
      this.api.root
        .addResource("nodeconfig.yaml")
        .addMethod("ANY", integration, { requestValidator: validator });
    }
  }

  /** Every accepted cdk-nag finding, each with the reason it is acceptable (listed in docs/security.md). */
  private acknowledgeFindings(role: Role, nodeRole: Role | undefined, props: ActivationBrokerProps): void {
    const policy = this.brokerPolicy!;
    Validations.of(policy).acknowledge(
      {
        id: "AwsSolutions-IAM5[Resource::*]",
        reason:
          "ssm:CreateActivation, ssm:DescribeActivations and ssm:DeleteActivation have no resource type in the IAM Service Authorization Reference, so only Resource '*' is accepted; CreateActivation (and the AddTagsToResource it implies) is conditioned on aws:RequestTag/activation-broker:deployment and aws:TagKeys.",
      },
      {
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/${this.parameterPrefix.slice(1)}/*]`,
        reason:
          "Parameter names end in activation ids that exist only at run time; the wildcard is confined to this deployment's Parameter Store prefix.",
      },
    );
    if (props.tracing) {
      Validations.of(role).acknowledge({
        id: "AwsSolutions-IAM5[Resource::*]",
        reason: "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions.",
      });
    }
    if (nodeRole) {
      Validations.of(nodeRole).acknowledge({
        id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
        reason:
          "AmazonSSMManagedInstanceCore is the AWS-maintained minimum for SSM Agent; AWS updates it as the agent's API needs change, which a copy would not follow.",
      });
    }
    Validations.of(this.api).acknowledge(
      {
        id: "AwsSolutions-APIG4",
        reason:
          "Callers are servers not yet registered with AWS, so they hold no credentials to sign with (the reference's client contract). Access is restricted instead by the resource policy (only through the named VPC endpoint, optionally only from allowed source ranges) and the endpoint's security group.",
      },
      {
        id: "AwsSolutions-COG4",
        reason:
          "No Cognito users exist in this flow: the callers are unregistered servers, see AwsSolutions-APIG4.",
      },
      {
        id: "AwsSolutions-APIG3",
        reason:
          "The API is private: reachable only through the VPC endpoint from allowed on-premises ranges, with stage throttling. A WAF web ACL can be associated by the operator; it is not created here to avoid per-deployment WAF cost.",
      },
    );
    if (props.apiGatewayCloudWatchRole) {
      const cwRole = this.api.node.tryFindChild("CloudWatchRole");
      if (cwRole) {
        Validations.of(cwRole).acknowledge({
          id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
          reason:
            "The AWS-managed policy API Gateway documents for its account logging role; created only on explicit opt-in.",
        });
      }
    }
  }
}

/** `<stack name>:<uuid of this stack instance>`: unique per deployment, readable in the console. */
function defaultDeploymentId(): string {
  return Fn.join(":", [Aws.STACK_NAME, Fn.select(2, Fn.split("/", Aws.STACK_ID))]);
}
