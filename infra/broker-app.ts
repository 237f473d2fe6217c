import { DefaultStackSynthesizer, Validations, type App } from "aws-cdk-lib";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import { AwsSolutionsChecks } from "cdk-nag";
import { ControlTowerGuard } from "./checks/control-tower-guard";
import { settingsFromContext, stageBurst, type AppSettings } from "./config/settings";
import { ApiEndpointStack } from "./stacks/api-endpoint-stack";
import { BrokerStack } from "./stacks/broker-stack";
import { ParameterStoreKeyStack } from "./stacks/parameter-store-key-stack";

export interface BrokerAppStacks {
  readonly endpoint?: ApiEndpointStack;
  readonly key?: ParameterStoreKeyStack;
  readonly broker: BrokerStack;
}

export interface BuildOptions {
  /** Handler entry override (tests of the wiring that need no real bundle). */
  readonly entry?: string;
  /**
   * Run cfn-guard (Control Tower rules) on synth. Tests that do not check policy turn it off: it
   * costs seconds per synth. @default true
   */
  readonly guard?: boolean;
}

/**
 * The whole deployment from context: steps 1 and 2 become stacks unless an existing endpoint / key
 * is named, step 3 always. Stack names carry DeploymentName so deployments coexist in one account.
 */
export function buildBrokerApp(app: App, options: BuildOptions = {}): BrokerAppStacks {
  const s = settingsFromContext(app.node);
  // cdk-nag 3 is a policy-validation plugin: it runs on every synth, and an error fails it.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  if (options.guard ?? true) Validations.of(app).addPlugins(new ControlTowerGuard());

  const prefix = s.DeploymentName ? `ActivationBroker-${s.DeploymentName}` : "ActivationBroker";
  // Steps 1 and 2 have no assets: without the bootstrap-version check their templates can be
  // uploaded in the console of any account, bootstrapped or not.
  const standalone = () => new DefaultStackSynthesizer({ generateBootstrapVersionRule: false });

  const endpoint =
    s.VpcEndpointForApiGateway.length === 0
      ? new ApiEndpointStack(app, `${prefix}-Endpoint`, {
          description: "SSM activation broker, step 1: execute-api VPC endpoint",
          synthesizer: standalone(),
          vpcId: s.VpcIdForApiGateway!,
          subnetIds: s.SubnetsForVpcEndpoint,
          allowedCidrs: s.AllowedIPRange,
          allowedApiIds: s.VpcEndpointAllowedApiIds,
          privateDnsEnabled: s.PrivateDnsEnabled,
        })
      : undefined;

  const keyStack = s.KmsKeyId
    ? undefined
    : new ParameterStoreKeyStack(app, `${prefix}-Key`, {
        description: "SSM activation broker, step 2: KMS key for the activation codes",
        synthesizer: standalone(),
      });

  const broker = new BrokerStack(app, `${prefix}-Api`, {
    description: "SSM activation broker, step 3: private API, function, table and node role",
    vpcEndpointIds: endpoint ? [endpoint.vpcEndpointId] : s.VpcEndpointForApiGateway,
    kmsKey: keyStack?.key ?? s.KmsKeyId!,
    ...brokerProps(s),
    ...(options.entry !== undefined && { entry: options.entry }),
  });
  return { ...(endpoint && { endpoint }), ...(keyStack && { key: keyStack }), broker };
}

function brokerProps(s: AppSettings) {
  return {
    pools: s.poolsDocument,
    stageName: s.ApiGatewayStageName,
    allowedSourceCidrs: s.ApiAllowedSourceIpRanges,
    ...(s.ParameterPrefix !== undefined && { parameterPrefix: s.ParameterPrefix }),
    ...(s.DefaultIamRole !== undefined && { nodeRoleName: s.DefaultIamRole }),
    ...(s.HybridNodesRole !== undefined && { hybridNodesRoleName: s.HybridNodesRole }),
    logLevel: s.LogLevel,
    logRetention: s.LogRetentionDays as RetentionDays,
    throttlingRateLimit: s.ThrottlingRateLimit,
    throttlingBurstLimit: stageBurst(s.ReservedConcurrency, s.ThrottlingRateLimit),
    reservedConcurrency: s.ReservedConcurrency,
    ...(s.CloudwatchLogRoleArn !== undefined && { cloudWatchLogRoleArn: s.CloudwatchLogRoleArn }),
    tableDeletionProtection: s.TableDeletionProtection,
  };
}
