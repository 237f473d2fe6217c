import {
  Aws,
  CfnCondition,
  CfnOutput,
  CfnParameter,
  type CfnParameterProps,
  Fn,
  Stack,
  StackSynthesizer,
  Token,
  type App,
  type DockerImageAssetLocation,
  type FileAssetLocation,
  type ISynthesisSession,
} from "aws-cdk-lib";
import { CfnAlarm, CfnDashboard } from "aws-cdk-lib/aws-cloudwatch";
import { CfnVPCEndpoint } from "aws-cdk-lib/aws-ec2";
import { CfnFunction } from "aws-cdk-lib/aws-lambda";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import { AwsSolutionsChecks } from "cdk-nag";
import type { Construct } from "constructs";
import { Validations } from "aws-cdk-lib";
import { ControlTowerGuard } from "./checks/control-tower-guard";
import { contextKey, setting } from "../src/settings-schema";
import { ActivationBroker } from "./constructs/activation-broker";
import { ApiVpcEndpoint } from "./constructs/api-vpc-endpoint";
import { Janitor } from "./constructs/janitor";
import { BrokerMonitoring } from "./constructs/monitoring";
import { ParameterStoreKey } from "./constructs/parameter-store-key";
import { addBrokerOutputs, importKey } from "./stacks/broker-stack";

/**
 * The CloudFormation release (`npm run package`): the three steps as self-contained templates
 * whose settings are CloudFormation parameters with the walkthrough's names (src/settings-schema.ts),
 * for people who
 * deploy with the console or the AWS CLI. No CDK bootstrap and no bucket: the functions' code is
 * inline (`Code.ZipFile`), so the three uploads are the whole deployment.
 */

/** Each function's code as CloudFormation lays out `ZipFile`: one CommonJS `index.js`. */
export interface InlineCode {
  readonly broker: string;
  readonly janitor: string;
}

/** Publishes nothing: every function's code is set inline below, so no asset reaches a template. */
class ReleaseSynthesizer extends StackSynthesizer {
  addFileAsset(): FileAssetLocation {
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
}

/** The schema's description as console text: no Markdown code marks or links. */
function plainText(markdown: string): string {
  return markdown.replace(/\[([^\]]+)\]\([^)]+\)/g, "$1").replace(/`/g, "");
}

/**
 * A parameter named, described and bounded by src/settings-schema.ts: its key, its description
 * (then `more`, what the console user needs besides), its range, values and default. `props`
 * adds what CloudFormation checks beyond the schema.
 */
function parameter(
  scope: Stack,
  key: string,
  props: Partial<CfnParameterProps> & { readonly more?: string } = {},
): CfnParameter {
  const s = setting(key);
  const { more, ...rest } = props;
  const description = `${plainText(s.description)}${more ? `. ${more}` : "."}`;
  const bounds: CfnParameterProps =
    s.type === "integer" || s.type === "number"
      ? { type: "Number", minValue: s.min!, maxValue: s.max!, default: s.default as number }
      : s.type === "boolean"
        ? { type: "String", allowedValues: ["true", "false"], default: String(s.default) }
        : s.type === "enum"
          ? {
              type: typeof s.values![0] === "number" ? "Number" : "String",
              allowedValues: s.values!.map(String),
              // A string, like the allowed values: CloudFormation compares them as given.
              ...(s.default !== undefined && { default: String(s.default) }),
            }
          : {
              type: "String",
              ...(s.pattern !== undefined && { allowedPattern: s.pattern }),
              ...(s.default !== undefined && { default: String(s.default) }),
            };
  return new CfnParameter(scope, contextKey(key), { ...bounds, description, ...rest });
}

/** An IPv4 octet, 0–255, without leading zeros. */
const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
/** An IPv4 CIDR: four octets 0–255 and a prefix length 0–32 (the reference's check). */
export const IPV4_CIDR_PATTERN = `^(${OCTET}\\.){3}${OCTET}/(3[0-2]|[12]?[0-9])$`;

/** The console's parameter form: groups in the walkthrough's order, each parameter labelled. */
function parameterForm(
  stack: Stack,
  groups: readonly { label: string; parameters: readonly [CfnParameter, string][] }[],
): void {
  stack.templateOptions.metadata = {
    "AWS::CloudFormation::Interface": {
      ParameterGroups: groups.map((g) => ({
        Label: { default: g.label },
        Parameters: g.parameters.map(([p]) => p.logicalId),
      })),
      ParameterLabels: Object.fromEntries(
        groups.flatMap((g) => g.parameters.map(([p, label]) => [p.logicalId, { default: label }])),
      ),
    },
  };
}

/** Stands for the stack name in alarm and dashboard names until nameAfterStack replaces it. */
const NAME_PREFIX = "ActivationBroker-Api";

/**
 * Alarm and dashboard names carry the stack name, so two deployments in one account do not
 * collide; the monitoring constructs need a literal prefix (it is part of construct ids), so they
 * get a placeholder, replaced here by `${AWS::StackName}`.
 */
function nameAfterStack(scope: Construct): void {
  const rename = (name: unknown) =>
    typeof name === "string" && name.startsWith(NAME_PREFIX)
      ? Fn.sub(`\${AWS::StackName}${name.slice(NAME_PREFIX.length)}`)
      : name;
  for (const c of scope.node.findAll()) {
    if (c instanceof CfnAlarm) c.alarmName = rename(c.alarmName) as string;
    if (c instanceof CfnDashboard) c.dashboardName = rename(c.dashboardName) as string;
  }
}

export function buildReleaseApp(app: App, code: InlineCode): ReleaseStacks {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ControlTowerGuard());

  // Step 1: the endpoint.
  const endpoint = new Stack(app, "ActivationBroker-Endpoint", {
    description: "SSM activation broker, step 1: execute-api VPC endpoint",
    synthesizer: new ReleaseSynthesizer(),
  });
  const vpcId = parameter(endpoint, "VpcIdForApiGateway", {
    type: "AWS::EC2::VPC::Id",
    allowedPattern: undefined,
    more: "Turn them on at VPC > Actions > Edit VPC settings",
  });
  const subnets = parameter(endpoint, "SubnetsForVpcEndpoint", {
    type: "List<AWS::EC2::Subnet::Id>",
    allowedPattern: undefined,
    more: "Two or more for availability",
  });
  const allowedRange = parameter(endpoint, "AllowedIPRange", {
    allowedPattern: IPV4_CIDR_PATTERN,
    constraintDescription: "an IPv4 CIDR such as 10.0.0.0/8: four numbers 0-255 and a prefix length 0-32",
    more: "Here one CIDR, e.g. 10.0.0.0/8",
  });
  const privateDns = parameter(endpoint, "PrivateDnsEnabled", {
    more: "false: servers use the endpoint's alias URL (EndpointInvokeUrl output)",
  });
  parameterForm(endpoint, [
    {
      label: "Network",
      parameters: [
        [vpcId, "VPC"],
        [subnets, "Subnets"],
        [allowedRange, "On-premises CIDR"],
        [privateDns, "Private DNS"],
      ],
    },
  ]);
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
  const api = new Stack(app, "ActivationBroker-Api", {
    description: "SSM activation broker, step 3: private API, functions, table, node role and alarms",
    // No indentation: the inline code leaves less room under the 1 MB a console upload may have.
    suppressTemplateIndentation: true,
    synthesizer: new ReleaseSynthesizer(),
  });
  const endpointId = parameter(api, "VpcEndpointForApiGateway", {
    constraintDescription: "a VPC endpoint id, vpce-…",
    more: "Here one: step 1's VpcEndpointForApiGateway output",
  });
  const kmsKeyId = parameter(api, "KmsKeyId", {
    allowedPattern: "^(mrk-)?[0-9a-f-]{32,36}$",
    constraintDescription: "a KMS key id (not an ARN or alias)",
    more: "Here a key id: step 2's KmsKeyId output",
  });
  const stage = parameter(api, "ApiGatewayStageName", {
    constraintDescription: "letters, digits, '-' and '_' only",
  });
  const logRole = parameter(api, "CloudwatchLogRoleArn", {
    default: "",
    allowedPattern: "^(arn:aws[a-z-]*:iam::\\d{12}:role/.+)?$",
    constraintDescription: "empty, or an IAM role ARN",
    more: "It is at API Gateway > Settings. Empty: the stack creates one, sets it for the account and keeps it when deleted",
  });
  const pools = parameter(api, "Pools", {
    default: '{"pools":{}}',
    maxLength: 3072,
    more: 'E.g. {"pools":{"linux":{"registrationLimit":500}}}; the default serves the "default" pool only. Checked when the function starts; a mistake shows in its log',
  });
  const poolRoles = parameter(api, "PoolRoleArns", {
    type: "CommaDelimitedList",
    default: "",
    more: "Comma separated; empty when no pool names a role",
  });
  const poolTags = parameter(api, "PoolTagKeys", {
    type: "CommaDelimitedList",
    default: "",
    more: "Comma separated; empty when no pool sets tags",
  });
  const rate = parameter(api, "ThrottlingRateLimit");
  const reserved = parameter(api, "ReservedConcurrency", {
    more: "Use 0 when the account's Lambda concurrency quota is under 200 (new accounts may have 10), since Lambda keeps 100 unreserved",
  });
  const retention = parameter(api, "LogRetentionDays");
  parameterForm(api, [
    {
      label: "From steps 1 and 2",
      parameters: [
        [endpointId, "VPC endpoint id"],
        [kmsKeyId, "KMS key id"],
      ],
    },
    {
      label: "API",
      parameters: [
        [stage, "Stage name"],
        [logRole, "API Gateway logging role (optional)"],
      ],
    },
    {
      label: "Pools (optional)",
      parameters: [
        [pools, "Pools document"],
        [poolRoles, "Roles the pools name"],
        [poolTags, "Tag keys the pools set"],
      ],
    },
    {
      label: "Limits",
      parameters: [
        [rate, "Requests per second"],
        [reserved, "Reserved concurrency"],
      ],
    },
    { label: "Logs", parameters: [[retention, "Log retention (days)"]] },
  ]);
  const has = (id: string, list: CfnParameter) =>
    new CfnCondition(api, id, {
      expression: Fn.conditionNot(Fn.conditionEquals(Fn.join("", list.valueAsList), "")),
    });
  const reserves = new CfnCondition(api, "ReservesConcurrency", {
    expression: Fn.conditionNot(Fn.conditionEquals(reserved.valueAsString, "0")),
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
    // The burst is the reserved concurrency (stageBurst), as the CDK app sets it.
    throttlingBurstLimit: Token.asNumber(
      Fn.conditionIf(reserves.logicalId, reserved.valueAsNumber, rate.valueAsNumber),
    ),
    reservedConcurrency: reserved.valueAsNumber,
  });
  const janitor = new Janitor(api, "Janitor", {
    table: broker.table,
    parameterPrefix: broker.parameterPrefix,
    environment: broker.environment,
    pools: broker.pools,
    logsKey: broker.logsKey,
    logRetention: retention.valueAsNumber as RetentionDays,
  });
  const monitoring = new BrokerMonitoring(api, "Monitoring", {
    topicKey: broker.logsKey,
    api: broker.api,
    stageName: stage.valueAsString,
    janitorFunction: janitor.function,
    pools: [...broker.pools.keys()],
    namePrefix: NAME_PREFIX,
  });
  nameAfterStack(monitoring);

  // The code inline: CloudFormation writes ZipFile to index.js (CommonJS), handler index.handler.
  const brokerFn = broker.function.node.defaultChild as CfnFunction;
  const janitorFn = janitor.function.node.defaultChild as CfnFunction;
  brokerFn.code = { zipFile: code.broker };
  janitorFn.code = { zipFile: code.janitor };
  // ReservedConcurrency=0: neither function reserves any, so accounts with a small quota can deploy.
  brokerFn.addPropertyOverride(
    "ReservedConcurrentExecutions",
    Fn.conditionIf(reserves.logicalId, reserved.valueAsNumber, Aws.NO_VALUE),
  );
  janitorFn.addPropertyOverride(
    "ReservedConcurrentExecutions",
    Fn.conditionIf(reserves.logicalId, 1, Aws.NO_VALUE),
  );
  for (const fn of [brokerFn, janitorFn]) {
    // W3005: CDK states the role dependency twice.
    fn.addMetadata("cfn-lint", { config: { ignore_checks: ["W3005"] } });
  }
  Validations.of(api).acknowledge({
    id: "Annotation::@aws-cdk/core:Stack.templateSize",
    reason:
      "The inline code makes the template large on purpose; npm run package refuses a template over the console's 1 MB itself (infra/scripts/package.ts).",
  });
  addBrokerOutputs(api, broker, { alarmTopic: monitoring.alarmTopic, janitorFunction: janitor.function });

  return { endpoint, key, api };
}
