import { Aws, RemovalPolicy, Stack, Token, Validations } from "aws-cdk-lib";
import type { RestApi } from "aws-cdk-lib/aws-apigateway";
import type { Table } from "aws-cdk-lib/aws-dynamodb";
import { ManagedPolicy, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey, Key } from "aws-cdk-lib/aws-kms";
import type { NodejsFunction } from "aws-cdk-lib/aws-lambda-nodejs";
import type { LogGroup } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { DEFAULT_PARAMETER_PREFIX, isValidParameterPrefix } from "../../src/aws/naming";
import { ConfigError } from "../../src/core/errors";
import type { PoolConfig } from "../../src/core/pool-config";
import { acknowledgeApiFindings, addBrokerRoutes, addPrivateApi, type PrivateApiOptions } from "./broker-api";
import { addBrokerFunction, addFunctionRole, type BrokerFunctionOptions } from "./broker-function";
import { brokerPools, type PoolsOptions } from "./broker-pools";
import { addBrokerLogs, addPoolTable, type BrokerStorageOptions } from "./broker-storage";
import { HybridNodesRole, clustersNeedingHybridNodesRole } from "./hybrid-nodes-role";

/**
 * Each concern's options are declared, with their defaults, in the file that uses them:
 * the private API (broker-api.ts), the function (broker-function.ts), the pools (broker-pools.ts),
 * the table and the logs (broker-storage.ts).
 */
export interface ActivationBrokerProps
  extends PrivateApiOptions, BrokerFunctionOptions, PoolsOptions, BrokerStorageOptions {
  /** Customer managed key for the SecureString codes (ParameterStoreKey or an existing key). */
  readonly kmsKey: IKey;
  /** @default `/activation-broker/<stack name>`, so deployments never share codes or IAM scope */
  readonly parameterPrefix?: string;
  /** Existing service role for managed nodes; by default one is created. */
  readonly nodeRoleName?: string;
  /** Existing EKS hybrid nodes role for EKS pools without an iamRole; by default one is created. */
  readonly hybridNodesRoleName?: string;
}

/**
 * Step 3 of the reference walkthrough: the private REST API, the broker function, its table and
 * the service role managed nodes assume, each with the narrowest permissions AWS allows.
 *
 * The parts are built by the builders of broker-*.ts, each readable alone; this class only
 * decides the order (which fixes the template's), and what one part hands the next. Alarms and
 * the dashboard are BrokerMonitoring's (monitoring.ts), which the stack adds beside this.
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

  constructor(scope: Construct, id: string, props: ActivationBrokerProps) {
    super(scope, id);
    const stack = Stack.of(this);
    if (props.vpcEndpointIds.length === 0) {
      throw new ConfigError(
        "Invalid broker configuration: vpcEndpointIds: at least one VPC endpoint is required",
      );
    }
    this.parameterPrefix = props.parameterPrefix ?? `${DEFAULT_PARAMETER_PREFIX}/${stack.stackName}`;
    if (!Token.isUnresolved(this.parameterPrefix) && !isValidParameterPrefix(this.parameterPrefix)) {
      throw new ConfigError(
        `Invalid broker configuration: parameterPrefix: '${this.parameterPrefix}' is not an absolute path`,
      );
    }

    // Node role first: pools without an iamRole default to it.
    this.nodeRole = props.nodeRoleName ? undefined : addNodeRole(this);
    this.nodeRoleName = props.nodeRoleName ?? this.nodeRole!.roleName;
    const eksClusters = props.poolsParameter ? [] : clustersNeedingHybridNodesRole(props.pools);
    this.hybridNodesRoleName =
      props.hybridNodesRoleName ??
      (eksClusters.length > 0
        ? new HybridNodesRole(this, "HybridNodesRole", { clusterArns: eksClusters }).role.roleName
        : undefined);
    const pools = brokerPools(this, {
      ...props,
      nodeRoleName: this.nodeRoleName,
      hybridNodesRoleName: this.hybridNodesRoleName,
    });
    this.pools = pools.pools;

    this.table = addPoolTable(this, props);
    const logs = addBrokerLogs(this, props);
    this.logsKey = logs.key;
    this.functionLogGroup = logs.functionLogGroup;
    this.accessLogGroup = logs.accessLogGroup;
    const role = addFunctionRole(this, logs.functionLogGroup);

    const api = addPrivateApi(this, { ...props, accessLogGroup: logs.accessLogGroup });
    this.api = api.api;
    this.url = api.url;
    this.endpointUrls = api.endpointUrls;

    const fn = addBrokerFunction(this, {
      ...props,
      role,
      logGroup: logs.functionLogGroup,
      table: this.table,
      parameterPrefix: this.parameterPrefix,
      nodeRoleName: this.nodeRoleName,
      ...(this.hybridNodesRoleName !== undefined && { hybridNodesRoleName: this.hybridNodesRoleName }),
      poolsDocument: pools.document,
      publicUrl: this.url,
      passRoleArns: pools.passRoleArns,
      allowedTagKeys: pools.allowedTagKeys,
    });
    this.function = fn.function;
    this.environment = fn.environment;

    addBrokerRoutes(this.api, this.function, { eksPools: pools.eksPools });
    acknowledgeApiFindings(this.api, props);
  }
}

/**
 * The role SSM gives hybrid nodes; trust is limited to SSM acting for this account and region.
 * Registered nodes keep assuming it after the broker is gone: deleting the stack must not cut
 * them off, so it is retained, and removing it is a cleanup step of its own.
 */
function addNodeRole(scope: Construct): Role {
  const role = new Role(scope, "NodeRole", {
    description: "Service role assumed by on-premises managed nodes registered through the activation broker",
    assumedBy: new ServicePrincipal("ssm.amazonaws.com", {
      conditions: {
        // Confused-deputy protection, as the Systems Manager hybrid setup guide recommends.
        StringEquals: { "aws:SourceAccount": Aws.ACCOUNT_ID },
        ArnLike: { "aws:SourceArn": `arn:${Aws.PARTITION}:ssm:${Aws.REGION}:${Aws.ACCOUNT_ID}:*` },
      },
    }),
    managedPolicies: [ManagedPolicy.fromAwsManagedPolicyName("AmazonSSMManagedInstanceCore")],
  });
  role.applyRemovalPolicy(RemovalPolicy.RETAIN);
  Validations.of(role).acknowledge({
    id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
    reason:
      "AmazonSSMManagedInstanceCore is the AWS-maintained minimum for SSM Agent; AWS updates it as the agent's API needs change, which a copy would not follow.",
  });
  return role;
}
