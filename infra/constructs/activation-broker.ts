import { fileURLToPath } from "node:url";
import { Aws, CfnCondition, Duration, Fn, RemovalPolicy, Stack, Token, Validations } from "aws-cdk-lib";
import {
  AccessLogFormat,
  CfnAccount,
  CfnStage,
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
  CfnRole,
  Effect,
  ManagedPolicy,
  Policy,
  PolicyDocument,
  PolicyStatement,
  Role,
  ServicePrincipal,
} from "aws-cdk-lib/aws-iam";
import { Key, type IKey } from "aws-cdk-lib/aws-kms";
import { Architecture, CfnPermission, Runtime, Tracing } from "aws-cdk-lib/aws-lambda";
import {
  type BundlingOptions,
  LogLevel as BundlingLogLevel,
  NodejsFunction,
  OutputFormat,
} from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { DEFAULT_PARAMETER_PREFIX, POOL_KEY_ATTRIBUTE, isValidParameterPrefix } from "../../src/aws/naming";
import { ConfigError } from "../../src/core/errors";
import {
  RESERVED_TAG_PREFIX,
  parsePools,
  poolsFileSchema,
  type PoolConfig,
} from "../../src/core/pool-config";
import { SSM_CRYPTO_ACTIONS, denyGrantsExceptForAwsServices, ssmViaService } from "./parameter-store-key";
import { StandbyRefill } from "./standby-refill";
import { AGENT_SCRIPTS_BUNDLING } from "../../scripts/bundling";
import {
  HybridNodesRole,
  clustersNeedingHybridNodesRole,
  requireClustersInStackRegion,
} from "./hybrid-nodes-role";

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

/** Lambda rejects a function whose environment exceeds 4 KB in total; leave room for the rest. */
const MAX_POOLS_ENV_BYTES = 3072;

export interface PoolsParameter {
  /** The `{"pools": {...}}` JSON document. */
  readonly document: string;
  /** Roles (ARNs) the pools name besides the node role, for `iam:PassRole`: a list token. */
  readonly roleArns: string[];
  /** Tag keys the pools put on activations besides `activation-broker:*`: a list token. */
  readonly tagKeys: string[];
  /** Whether `roleArns` / `tagKeys` are non-empty (CloudFormation conditions). */
  readonly hasRoleArns: CfnCondition;
  readonly hasTagKeys: CfnCondition;
}

export type LogLevel = "DEBUG" | "INFO" | "WARN" | "ERROR";

export interface ActivationBrokerProps {
  /** Endpoints through which the private API may be invoked; anything else is denied. */
  readonly vpcEndpointIds: readonly string[];
  /** Customer managed key for the SecureString codes (ParameterStoreKey or an existing key). */
  readonly kmsKey: IKey;
  /** The pools document, `{"pools": {...}}`, validated here with the broker's own schema. @default {} */
  readonly pools?: unknown;
  /**
   * Pools chosen at deploy time (the CloudFormation release): the document as a parameter, which
   * the broker validates when it starts, and the IAM scope it needs, which synth cannot derive.
   * Replaces `pools`.
   */
  readonly poolsParameter?: PoolsParameter;
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
  /** Retention of the function log and the API access log. @default RetentionDays.ONE_YEAR */
  readonly logRetention?: RetentionDays;
  /** API Gateway execution logging; never with data trace (it would log the codes). @default ERROR */
  readonly executionLogLevel?: MethodLoggingLevel;
  /** Steady-state requests per second for the stage. @default 50 */
  readonly throttlingRateLimit?: number;
  /** @default 100 */
  readonly throttlingBurstLimit?: number;
  /**
   * Concurrent executions reserved for (and capping) the function; 0 reserves none. Kept at the
   * stage's burst so API Gateway's 429 is what a flooding caller sees, not Lambda's throttle
   * (which a proxy integration turns into a 500). @default 100
   */
  readonly reservedConcurrency?: number;
  /** X-Ray on the stage and the function. @default true */
  readonly tracing?: boolean;
  /**
   * The role API Gateway writes logs with, set as the account's API Gateway CloudWatch role (one
   * per account and region; stage logging cannot deploy without it). Empty or absent: a role is
   * created, set, and retained on stack deletion, since other APIs of the account may use it.
   * May be a CloudFormation parameter (then chosen at deploy time).
   */
  readonly cloudWatchLogRoleArn?: string;
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
  /** `https://<api>.execute-api.<region>.amazonaws.com/<stage>` (private DNS), no trailing slash. */
  readonly url: string;
  /** Per endpoint: `https://<api>-<vpce>.execute-api.<region>.amazonaws.com/<stage>`, no private DNS needed. */
  readonly endpointUrls: string[];
  readonly nodeRole?: Role;
  readonly functionLogGroup: LogGroup;
  readonly accessLogGroup: LogGroup;
  /** Encrypts the log groups; the janitor's too. */
  readonly logsKey: Key;
  /** The validated pools and the function's BROKER_* environment, which the janitor shares. */
  readonly pools: ReadonlyMap<string, PoolConfig>;
  readonly environment: Readonly<Record<string, string>>;
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
    if (!Token.isUnresolved(this.parameterPrefix) && !isValidParameterPrefix(this.parameterPrefix)) {
      throw new ConfigError(
        `Invalid broker configuration: parameterPrefix: '${this.parameterPrefix}' is not an absolute path`,
      );
    }

    // Node role first: pools without an iamRole default to it.
    const nodeRole = props.nodeRoleName ? undefined : this.createNodeRole();
    this.nodeRole = nodeRole;
    this.nodeRoleName = props.nodeRoleName ?? nodeRole!.roleName;

    // The broker's own validation, run at synth: a bad pool fails `cdk synth`, not the first vend.
    const eksClusters = props.poolsParameter ? [] : clustersNeedingHybridNodesRole(props.pools);
    this.hybridNodesRoleName =
      props.hybridNodesRoleName ??
      (eksClusters.length > 0
        ? new HybridNodesRole(this, "HybridNodesRole", { clusterArns: eksClusters }).role.roleName
        : undefined);
    const pools = parsePools(props.poolsParameter ? {} : (props.pools ?? {}), {
      iamRole: this.nodeRoleName,
      eksIamRole: this.hybridNodesRoleName,
    });
    requireClustersInStackRegion(this, pools);
    this.pools = pools;
    const poolsEnv =
      props.poolsParameter?.document ?? JSON.stringify(poolsFileSchema.parse(props.pools ?? {}));
    if (!props.poolsParameter && Buffer.byteLength(poolsEnv) > MAX_POOLS_ENV_BYTES) {
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

    const retention = props.logRetention ?? RetentionDays.ONE_YEAR;
    const logsKey = (this.logsKey = this.createLogsKey());
    this.functionLogGroup = new LogGroup(this, "FunctionLogs", { retention, encryptionKey: logsKey });
    this.accessLogGroup = new LogGroup(this, "ApiAccessLogs", { retention, encryptionKey: logsKey });

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
      // The account's logging role is set below, where it can come from a parameter.
      cloudWatchRole: false,
      deployOptions: {
        // A stage name chosen at deploy time cannot be part of construct ids: set it below.
        stageName: Token.isUnresolved(stageName) ? "prod" : stageName,
        accessLogDestination: new LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: props.executionLogLevel ?? MethodLoggingLevel.ERROR,
        // Data trace logs full responses, i.e. Activation Codes (I6): never.
        dataTraceEnabled: false,
        metricsEnabled: true,
        tracingEnabled: props.tracing ?? true,
        throttlingRateLimit: props.throttlingRateLimit ?? 50,
        throttlingBurstLimit: props.throttlingBurstLimit ?? 100,
      },
      // No CORS: callers are servers with curl/PowerShell, never browsers.
    });
    // Built by hand, not api.url: that refers to the stage, which depends on the methods, which
    // depend on the function, whose environment needs the URL — a cycle.
    // RestApi's own URL output names no endpoint; the stacks output both URLs themselves.
    this.api.node.tryRemoveChild("Endpoint");
    if (Token.isUnresolved(stageName)) {
      (this.api.deploymentStage.node.defaultChild as CfnStage).addPropertyOverride("StageName", stageName);
    }
    this.url = `https://${this.api.restApiId}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}/${stageName}`;
    this.endpointUrls = props.vpcEndpointIds.map(
      (vpce) =>
        `https://${this.api.restApiId}-${vpce}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}/${stageName}`,
    );
    this.setAccountLoggingRole(props.cloudWatchLogRoleArn);

    this.function = new NodejsFunction(this, "Function", {
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
      role,
      logGroup: this.functionLogGroup,
      tracing: (props.tracing ?? true) ? Tracing.ACTIVE : Tracing.DISABLED,
      description: "SSM hybrid activation broker",
      environment: (this.environment = {
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
        // The alias names through these endpoints are this API's own names too (see lambda.ts).
        BROKER_VPC_ENDPOINT_IDS: Fn.join(",", [...props.vpcEndpointIds]),
        POWERTOOLS_SERVICE_NAME: "activation-broker",
        POWERTOOLS_LOG_LEVEL: props.logLevel ?? "INFO",
        NODE_OPTIONS: "--enable-source-maps",
      }),
      bundling: FUNCTION_BUNDLING,
    });

    // Standby activations are made by an asynchronous self-invocation, off the response path.
    new StandbyRefill(this, "StandbyRefill", { function: this.function, role });

    this.grantBrokerPermissions(role, {
      kmsKey: props.kmsKey,
      deploymentId: props.deploymentId ?? defaultDeploymentId(),
      ...(props.poolsParameter
        ? this.deployTimePoolScope(props.poolsParameter)
        : {
            passRoleArns: poolRoleNames.map(
              (name) => `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:role/${name}`,
            ),
            allowedTagKeys: [`${RESERVED_TAG_PREFIX}*`, ...poolTagKeys],
          }),
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
    const role = new Role(this, "NodeRole", {
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
    // Registered nodes keep assuming this role after the broker is gone; deleting the stack must
    // not cut them off. Removing it is a cleanup step of its own.
    role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    return role;
  }

  /**
   * Customer managed key for the two log groups (Control Tower's CT.CLOUDWATCH.PR.3). Not the codes
   * key: that one is usable through Systems Manager only. Retained like the log groups it protects.
   */
  private createLogsKey(): Key {
    const key = new Key(this, "LogsKey", {
      description: `Encrypts the activation broker's log groups (${Stack.of(this).stackName})`,
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

  /**
   * Sets the account's API Gateway CloudWatch role, to the given one or to a role created here.
   * A parameter decides at deploy time (CloudFormation condition); a literal or nothing, at synth.
   */
  private setAccountLoggingRole(givenArn: string | undefined): void {
    const create = () => {
      const role = new Role(this, "ApiGatewayLogsRole", {
        description: "API Gateway account logging role (set by the activation broker stack)",
        assumedBy: new ServicePrincipal("apigateway.amazonaws.com"),
        managedPolicies: [
          ManagedPolicy.fromAwsManagedPolicyName("service-role/AmazonAPIGatewayPushToCloudWatchLogs"),
        ],
      });
      // The setting outlives the stack (CloudFormation never unsets it), and other APIs in the
      // account may log through it: deleting the role would silently break their logging.
      role.applyRemovalPolicy(RemovalPolicy.RETAIN);
      Validations.of(role).acknowledge({
        id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
        reason:
          "The AWS-managed policy API Gateway documents for its account logging role; AWS keeps it in step with what API Gateway needs to write logs.",
      });
      return role;
    };
    let arn: string;
    if (givenArn === undefined || givenArn === "") {
      arn = create().roleArn;
    } else if (Token.isUnresolved(givenArn)) {
      const createRole = new CfnCondition(this, "CreateLogRole", {
        expression: Fn.conditionEquals(givenArn, ""),
      });
      const role = create();
      (role.node.defaultChild as CfnRole).cfnOptions.condition = createRole;
      arn = Fn.conditionIf(createRole.logicalId, role.roleArn, givenArn).toString();
    } else {
      arn = givenArn;
    }
    const account = new CfnAccount(this, "ApiGatewayAccount", { cloudWatchRoleArn: arn });
    // Stage logging is refused until the account has a role.
    this.api.deploymentStage.node.addDependency(account);
  }

  /** The node role plus the parameter's roles; `activation-broker:*` plus its tag keys. */
  private deployTimePoolScope(p: PoolsParameter): { passRoleArns: string[]; allowedTagKeys: string[] } {
    const nodeRoleArn = `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:role/${this.nodeRoleName}`;
    const reserved = `${RESERVED_TAG_PREFIX}*`;
    const withList = (first: string, list: string[], has: CfnCondition): string[] =>
      Token.asList(
        Fn.conditionIf(has.logicalId, Fn.split(",", Fn.join(",", [first, Fn.join(",", list)])), [first]),
      );
    return {
      passRoleArns: withList(nodeRoleArn, p.roleArns, p.hasRoleArns),
      allowedTagKeys: withList(reserved, p.tagKeys, p.hasTagKeys),
    };
  }

  private grantBrokerPermissions(
    role: Role,
    opts: { kmsKey: IKey; deploymentId: string; passRoleArns: string[]; allowedTagKeys: string[] },
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
        // No Scan: listing pools is the janitor's and the CLI's (infra/constructs/janitor.ts).
        actions: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
        resources: [this.table.tableArn],
      }),
      new PolicyStatement({
        sid: "ActivationCodes",
        actions: ["ssm:PutParameter", "ssm:GetParameters", "ssm:DeleteParameter"],
        resources: [`arn:${partition}:ssm:${region}:${account}:parameter/${prefixPath}/*`],
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
        resources: opts.passRoleArns,
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
      // A vend deletes only the activation of a rotation it lost, and describes only the one a
      // rotation replaces (the slot-theft check, src/core/reconcile.ts); listing them is the
      // janitor's. Neither action has a resource type or condition key: "*" is the only form.
      new PolicyStatement({
        sid: "DescribeOutgoingAndDeleteLostActivations",
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
    // (docs/http-api.md); with GET-only methods API Gateway would answer a bare 403 instead.
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
      for (const path of ["nodeconfig.yaml", "install-eks.sh"]) {
        this.api.root.addResource(path).addMethod("ANY", integration, { requestValidator: validator });
      }
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
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/${nagText(this, this.parameterPrefix).slice(1)}/*]`,
        reason:
          "Parameter names end in activation ids that exist only at run time; the wildcard is confined to this deployment's Parameter Store prefix.",
      },
    );
    if (props.tracing ?? true) {
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
    // cfn-guard, Control Tower rules (docs/deploy.md lists these with the cdk-nag ones).
    Validations.of(this.function).acknowledge({
      id: "lambda_inside_vpc_check",
      reason:
        "CT.LAMBDA.PR.3: the function has no inbound network path (API Gateway invokes it) and calls only AWS APIs; inside a VPC it would need NAT or five interface endpoints (DynamoDB, SSM, KMS, Logs, X-Ray) per deployment for no gain in isolation.",
    });
    if (!(props.tracing ?? true)) {
      Validations.of(this.api).acknowledge({
        id: "api_gw_xray_enabled_check",
        reason:
          "CT.APIGATEWAY.PR.2: X-Ray was turned off on purpose by this deployment's settings (EnableXRay=false).",
      });
    }
    if ((props.logRetention ?? RetentionDays.ONE_YEAR) < RetentionDays.ONE_YEAR) {
      for (const group of [this.functionLogGroup, this.accessLogGroup]) {
        Validations.of(group).acknowledge({
          id: "cloudwatch_log_group_retention_period_check",
          reason:
            "CT.CLOUDWATCH.PR.2: a retention under a year was chosen on purpose by this deployment's settings (LogRetentionDays).",
        });
      }
    }
    for (const permission of this.api.node.findAll().filter((c) => c instanceof CfnPermission)) {
      Validations.of(permission).acknowledge({
        id: "lambda_function_public_access_prohibited_check",
        reason:
          "CT.LAMBDA.PR.2: the principal is apigateway.amazonaws.com and SourceArn is this API's own ARN (an Fn::Join the rule cannot evaluate, so it reports it as missing); no other caller may invoke the function.",
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
  }
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
