import { Aws, CfnOutput, type Duration, Stack, type StackProps } from "aws-cdk-lib";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { ITopic } from "aws-cdk-lib/aws-sns";
import { Key, type IKey } from "aws-cdk-lib/aws-kms";
import type { Construct } from "constructs";
import { ActivationBroker, type ActivationBrokerProps } from "../constructs/activation-broker";
import { Janitor } from "../constructs/janitor";
import { BrokerMonitoring } from "../constructs/monitoring";

export type BrokerStackProps = StackProps &
  Omit<ActivationBrokerProps, "kmsKey"> & {
    /** The codes key: a key from another stack, or the id / ARN of an existing key (reference: KmsKeyId). */
    readonly kmsKey: IKey | string;
    /** How often the janitor runs. @default Duration.hours(1) */
    readonly janitorSchedule?: Duration;
    /** Where the alarms notify. @default none */
    readonly alarmTopic?: ITopic;
  };

/** Step 3: the private API, the function, the table and the node role, with the operator's outputs. */
export class BrokerStack extends Stack {
  readonly broker: ActivationBroker;
  readonly janitor: Janitor;

  constructor(scope: Construct, id: string, props: BrokerStackProps) {
    super(scope, id, props);
    const kmsKey = typeof props.kmsKey === "string" ? importKey(this, props.kmsKey) : props.kmsKey;
    const broker = new ActivationBroker(this, "Broker", { ...props, kmsKey });
    this.broker = broker;
    this.janitor = new Janitor(this, "Janitor", {
      table: broker.table,
      parameterPrefix: broker.parameterPrefix,
      environment: broker.environment,
      pools: broker.pools,
      logsKey: broker.logsKey,
      ...(props.tracing !== undefined && { tracing: props.tracing }),
      // An account too small for the broker's reservation has no room for the janitor's either.
      ...(props.reservedConcurrency === 0 && { reservedConcurrency: 0 as const }),
      ...(props.janitorSchedule && { schedule: props.janitorSchedule }),
      ...(props.logRetention && { logRetention: props.logRetention }),
    });
    const monitoring = new BrokerMonitoring(this, "Monitoring", {
      topicKey: broker.logsKey,
      api: broker.api,
      stageName: props.stageName ?? "prod",
      janitorFunction: this.janitor.function,
      pools: [...broker.pools.keys()],
      namePrefix: this.stackName,
      ...(props.alarmTopic && { alarmTopic: props.alarmTopic }),
    });

    addBrokerOutputs(this, broker, {
      alarmTopic: monitoring.alarmTopic,
      janitorFunction: this.janitor.function,
    });
  }
}

/** The operator's outputs of step 3 (docs/deploy.md lists them; a test keeps the list true). */
export function addBrokerOutputs(
  stack: Stack,
  broker: ActivationBroker,
  operations?: { alarmTopic: ITopic; janitorFunction: IFunction },
): void {
  const url = broker.url;
  const outputs: Record<string, { value: string; description: string }> = {
    InvokeUrl: {
      value: `${url}/`,
      description: "Broker URL through private DNS (GET: a pair from the default pool)",
    },
    ...Object.fromEntries(
      broker.endpointUrls.map((u, i) => [
        endpointUrlOutputId(i),
        {
          value: `${u}/`,
          description: "Broker URL through one VPC endpoint's alias: needs no private DNS",
        },
      ]),
    ),
    ActivationCodeCommand: {
      value: `curl -s ${url}/ | jq -r .ActivationCode`,
      description: "Fetch a pair from the default pool, as the reference's clients do",
    },
    PoolUrlTemplate: { value: `${url}/activations/{pool}`, description: "A pair from a named pool" },
    LinuxInstallCommand: {
      value: `curl -fsSL ${url}/install.sh | sudo bash`,
      description: "Install and register SSM Agent on a Linux server",
    },
    WindowsInstallCommand: {
      // Windows PowerShell 5.1 may default to TLS 1.0; the scriptblock form keeps param() working.
      value: `[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12; & ([scriptblock]::Create((Invoke-RestMethod -UseBasicParsing -Uri '${url}/install.ps1')))`,
      description: "Install and register SSM Agent on a Windows server (elevated PowerShell)",
    },
    RestApiId: {
      value: broker.api.restApiId,
      description: "Pass as -c VpcEndpointAllowedApiIds=… to pin the VPC endpoint to this API",
    },
    PoolTableName: { value: broker.table.tableName, description: "DynamoDB table with the pool state" },
    NodeRoleName: { value: broker.nodeRoleName, description: "IAM service role of the registered nodes" },
    ParameterPrefix: { value: broker.parameterPrefix, description: "Parameter Store path of the codes" },
    FunctionName: { value: broker.function.functionName, description: "Broker Lambda function" },
    ...(operations && {
      AlarmTopicArn: {
        value: operations.alarmTopic.topicArn,
        description: "SNS topic every alarm notifies: subscribe to it",
      },
      JanitorFunctionName: {
        value: operations.janitorFunction.functionName,
        description: "Janitor Lambda function (scheduled; invoke it to clean up now)",
      },
    }),
    FunctionLogGroup: { value: broker.functionLogGroup.logGroupName, description: "Function log" },
    ApiAccessLogGroup: { value: broker.accessLogGroup.logGroupName, description: "API access log" },
  };
  if (broker.hybridNodesRoleName !== undefined) {
    outputs.HybridNodesRoleName = {
      value: broker.hybridNodesRoleName,
      description: "EKS hybrid nodes role: give it an access entry of type HYBRID_LINUX (docs/eks.md)",
    };
    outputs.NodeConfigUrlTemplate = {
      value: `${url}/nodeconfig.yaml?pool={pool}`,
      description: "A nodeadm NodeConfig with a fresh pair from an EKS pool",
    };
    outputs.EksInstallCommand = {
      value: `curl -fsSL "${url}/install-eks.sh?pool=<pool>" | sudo bash -s -- --kubernetes-version <version>`,
      description: "Join a Linux host to an EKS pool's cluster as a hybrid node (docs/eks.md)",
    };
  }
  for (const [id, o] of Object.entries(outputs)) new CfnOutput(stack, id, o);
}

/** `EndpointInvokeUrl` for the first endpoint, then `EndpointInvokeUrl2`, `EndpointInvokeUrl3`, … */
export const endpointUrlOutputId = (i: number): string => `EndpointInvokeUrl${i === 0 ? "" : i + 1}`;

/** An existing key named by id or ARN, imported without a lookup (synth needs no credentials). */
export function importKey(scope: Construct, keyIdOrArn: string): IKey {
  const arn = keyIdOrArn.startsWith("arn:")
    ? keyIdOrArn
    : `arn:${Aws.PARTITION}:kms:${Aws.REGION}:${Aws.ACCOUNT_ID}:key/${keyIdOrArn}`;
  return Key.fromKeyArn(scope, "ImportedKmsKey", arn);
}
