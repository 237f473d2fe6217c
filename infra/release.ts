import {
  Aws,
  CfnCondition,
  CfnOutput,
  CfnParameter,
  Fn,
  Stack,
  StackSynthesizer,
  type App,
  type DockerImageAssetLocation,
  type FileAssetLocation,
  type FileAssetSource,
  type ISynthesisSession,
} from "aws-cdk-lib";
import { CfnVPCEndpoint } from "aws-cdk-lib/aws-ec2";
import { CfnFunction } from "aws-cdk-lib/aws-lambda";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import { AwsSolutionsChecks } from "cdk-nag";
import { Validations } from "aws-cdk-lib";
import { ControlTowerGuard } from "./checks/control-tower-guard";
import { LOG_RETENTION_DAYS } from "./config/settings";
import { ActivationBroker } from "./constructs/activation-broker";
import { ApiVpcEndpoint } from "./constructs/api-vpc-endpoint";
import { ParameterStoreKey } from "./constructs/parameter-store-key";
import { addBrokerOutputs, importKey } from "./stacks/broker-stack";

/**
 * The CloudFormation release (`npm run package`): the three steps as self-contained templates
 * whose settings are CloudFormation parameters with the walkthrough's names, for people who
 * deploy with the console or the AWS CLI. No CDK bootstrap: the function code is a local zip
 * (`Code: ./broker.zip`) that `aws cloudformation package` uploads to the deployer's bucket.
 */

/** Where the packaged templates expect the function code, relative to the Api template. */
export const FUNCTION_ZIP = "broker.zip";

/** Records file assets instead of publishing them: the package script zips them itself. */
class ReleaseSynthesizer extends StackSynthesizer {
  readonly fileAssets: string[] = [];

  addFileAsset(asset: FileAssetSource): FileAssetLocation {
    this.fileAssets.push(asset.fileName!);
    // Replaced by `Code: ./broker.zip` below; never rendered into a template.
    return { bucketName: "unused", objectKey: "unused", httpUrl: "unused", s3ObjectUrl: "unused" };
  }

  addDockerImageAsset(): DockerImageAssetLocation {
    throw new Error("The CloudFormation release has no container images");
  }

  synthesize(session: ISynthesisSession): void {
    this.synthesizeTemplate(session);
    this.emitArtifact(session);
  }
}

export interface ReleaseStacks {
  readonly endpoint: Stack;
  readonly key: Stack;
  readonly api: Stack;
  /** Asset directories (relative to the cloud assembly) holding the function bundle. */
  readonly functionAssets: () => string[];
}

const yesNo = (scope: Stack, id: string, description: string, fallback: "true" | "false") =>
  new CfnParameter(scope, id, {
    type: "String",
    allowedValues: ["true", "false"],
    default: fallback,
    description,
  });

export function buildReleaseApp(app: App): ReleaseStacks {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ControlTowerGuard());

  // Step 1: the endpoint.
  const endpoint = new Stack(app, "ActivationBroker-Endpoint", {
    description: "SSM activation broker, step 1: execute-api VPC endpoint",
    synthesizer: new ReleaseSynthesizer(),
  });
  const vpcId = new CfnParameter(endpoint, "VpcIdForApiGateway", {
    type: "AWS::EC2::VPC::Id",
    description: "VPC that on-premises servers reach over Direct Connect or VPN",
  });
  const subnets = new CfnParameter(endpoint, "SubnetsForVpcEndpoint", {
    type: "List<AWS::EC2::Subnet::Id>",
    description: "Subnets of that VPC for the endpoint's network interfaces, one per AZ",
  });
  const allowedRange = new CfnParameter(endpoint, "AllowedIPRange", {
    type: "String",
    allowedPattern: "^(\\d{1,3}\\.){3}\\d{1,3}/\\d{1,2}$",
    description: "On-premises CIDR allowed to reach the endpoint on TCP 443, e.g. 10.0.0.0/8",
  });
  const privateDns = yesNo(
    endpoint,
    "PrivateDnsEnabled",
    "Private DNS for execute-api in this VPC (docs/deploy.md: 'Private DNS on or off')",
    "true",
  );
  const vpce = new ApiVpcEndpoint(endpoint, "ApiVpcEndpoint", {
    vpcId: vpcId.valueAsString,
    subnetIds: subnets.valueAsList,
    allowedCidrs: [allowedRange.valueAsString],
  });
  Validations.of(vpce.securityGroup).acknowledge({
    id: "AwsSolutions-EC23",
    reason:
      "The ingress range is the AllowedIPRange parameter, which cdk-nag cannot evaluate; its AllowedPattern admits only an IPv4 CIDR, the deployer's on-premises range.",
  });
  const dnsOn = new CfnCondition(endpoint, "PrivateDnsOn", {
    expression: Fn.conditionEquals(privateDns.valueAsString, "true"),
  });
  (vpce.endpoint.node.defaultChild as CfnVPCEndpoint).addPropertyOverride(
    "PrivateDnsEnabled",
    Fn.conditionIf(dnsOn.logicalId, true, false),
  );
  new CfnOutput(endpoint, "VpcEndpointForApiGateway", {
    description: "Id of the execute-api VPC endpoint (the Api stack's VpcEndpointForApiGateway)",
    value: vpce.vpcEndpointId,
  });
  new CfnOutput(endpoint, "VpcEndpointSecurityGroup", { value: vpce.securityGroup.securityGroupId });

  // Step 2: the key.
  const key = new Stack(app, "ActivationBroker-Key", {
    description: "SSM activation broker, step 2: KMS key for the activation codes",
    synthesizer: new ReleaseSynthesizer(),
  });
  const codesKey = new ParameterStoreKey(key, "ParameterStoreKey").key;
  new CfnOutput(key, "KmsKeyId", { description: "Key id (the Api stack's KmsKeyId)", value: codesKey.keyId });
  new CfnOutput(key, "KmsKeyArn", { value: codesKey.keyArn });

  // Step 3: the API.
  const apiSynth = new ReleaseSynthesizer();
  const api = new Stack(app, "ActivationBroker-Api", {
    description: "SSM activation broker, step 3: private API, function, table and node role",
    synthesizer: apiSynth,
  });
  const p = (id: string, props: ConstructorParameters<typeof CfnParameter>[2]) =>
    new CfnParameter(api, id, props);
  const endpointId = p("VpcEndpointForApiGateway", {
    type: "String",
    allowedPattern: "^vpce-[0-9a-f]{8,17}$",
    description: "The execute-api VPC endpoint (step 1's output)",
  });
  const kmsKeyId = p("KmsKeyId", {
    type: "String",
    allowedPattern: "^(mrk-)?[0-9a-f-]{32,36}$",
    description: "Id of the codes key (step 2's output)",
  });
  const stage = p("ApiGatewayStageName", {
    type: "String",
    default: "prod",
    allowedPattern: "^[A-Za-z0-9_-]{1,128}$",
    description: "Stage name, part of the URL",
  });
  const logRole = p("CloudwatchLogRoleArn", {
    type: "String",
    default: "",
    allowedPattern: "^(arn:aws[a-z-]*:iam::\\d{12}:role/.+)?$",
    description: "The account's API Gateway logging role; empty: create one, set it, retain it",
  });
  const pools = p("Pools", {
    type: "String",
    default: '{"pools":{}}',
    maxLength: 3072,
    description: 'Pools document, e.g. {"pools":{"linux":{"registrationLimit":500}}}',
  });
  const poolRoles = p("PoolRoleArns", {
    type: "CommaDelimitedList",
    default: "",
    description: "ARNs of the roles your pools name in iamRole (the broker may pass only these)",
  });
  const poolTags = p("PoolTagKeys", {
    type: "CommaDelimitedList",
    default: "",
    description: "Tag keys your pools put on activations",
  });
  const retention = p("LogRetentionDays", {
    type: "Number",
    // A string, like the allowed values: CloudFormation compares them as given.
    default: "365",
    allowedValues: LOG_RETENTION_DAYS.map(String),
    description: "Retention of the function log and the API access log",
  });
  const rate = p("ThrottlingRateLimit", {
    type: "Number",
    default: 50,
    minValue: 1,
    maxValue: 10000,
    description: "Stage steady-state requests per second, all callers together",
  });
  const burst = p("ThrottlingBurstLimit", {
    type: "Number",
    default: 100,
    minValue: 1,
    maxValue: 5000,
    description: "Stage burst",
  });
  const reserved = p("ReservedConcurrency", {
    type: "Number",
    default: 100,
    minValue: 1,
    maxValue: 10000,
    description: "Concurrent executions reserved for (and capping) the function",
  });
  const has = (id: string, list: CfnParameter) =>
    new CfnCondition(api, id, {
      expression: Fn.conditionNot(Fn.conditionEquals(Fn.join("", list.valueAsList), "")),
    });

  const broker = new ActivationBroker(api, "Broker", {
    vpcEndpointIds: [endpointId.valueAsString],
    kmsKey: importKey(api, kmsKeyId.valueAsString),
    stageName: stage.valueAsString,
    parameterPrefix: `/activation-broker/${Aws.STACK_NAME}`,
    cloudWatchLogRoleArn: logRole.valueAsString,
    poolsParameter: {
      document: pools.valueAsString,
      roleArns: poolRoles.valueAsList,
      tagKeys: poolTags.valueAsList,
      hasRoleArns: has("HasPoolRoleArns", poolRoles),
      hasTagKeys: has("HasPoolTagKeys", poolTags),
    },
    logRetention: retention.valueAsNumber as RetentionDays,
    throttlingRateLimit: rate.valueAsNumber,
    throttlingBurstLimit: burst.valueAsNumber,
    reservedConcurrency: reserved.valueAsNumber,
  });
  // Local code, uploaded by `aws cloudformation package`.
  const fn = broker.function.node.defaultChild as CfnFunction;
  fn.addPropertyOverride("Code", `./${FUNCTION_ZIP}`);
  // W3002: the local path is intended (see below). W3005: CDK states the role dependency twice.
  fn.addMetadata("cfn-lint", { config: { ignore_checks: ["W3002", "W3005"] } });
  Validations.of(broker.function).acknowledge({
    id: "CloudFormation-Validate::W3002",
    reason:
      "A local code path is the point of the release: `aws cloudformation package` uploads broker.zip and rewrites Code to its S3 location.",
  });
  addBrokerOutputs(api, broker);

  return { endpoint, key, api, functionAssets: () => [...apiSynth.fileAssets] };
}
