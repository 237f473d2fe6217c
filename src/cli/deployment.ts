/**
 * Which deployment the admin commands act on, found the way the AWS CLI finds things: by name.
 *
 *   --stack NAME   the broker's CloudFormation stack (the CDK app's `<prefix>-Api`, the release's
 *                  Api stack): its FunctionName output names the broker function, whose BROKER_*
 *                  environment is the deployment's settings.
 *   --local        the running `npm start` (src/cli/local-deployment.ts).
 *   neither        the BROKER_* environment, as for `serve`.
 *
 * BROKER_* variables in the environment override what was found, one by one.
 */
import { type CloudFormationClient, DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import { GetFunctionConfigurationCommand } from "@aws-sdk/client-lambda";
import type { LookupClients } from "../aws/lookup-clients";
import { UsageError } from "./args";
import { LOCAL_ENV, npmStartRecordPath, readNpmStartRecord } from "./local-deployment";

/** Where the admin commands send their AWS calls, and the settings they run with. */
export interface Target {
  /** BROKER_* and AWS_REGION, for loadSettings. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly endpoint?: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

export interface TargetOptions {
  readonly stack?: string | undefined;
  readonly local?: boolean | undefined;
  readonly region?: string | undefined;
  readonly "endpoint-url"?: string | undefined;
}

/** The stack output that names the broker function (infra/stacks/broker-stack.ts, both apps). */
export const FUNCTION_NAME_OUTPUT = "FunctionName";

/** The named deployment is not there: no such stack, or no running `npm start` (exit code 3). */
export class DeploymentNotFoundError extends Error {
  override readonly name = "DeploymentNotFoundError";
}

/** The emulated AWS accepts any credentials; these keep the caller's own profile out of it. */
const LOCAL_CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" };

/**
 * The SDK clients a lookup needs, for a Region and endpoint; built by the entry point with the
 * configuration every client of this package shares (src/aws/clients.ts).
 */
export type LookupClientsFor = (where: { region?: string; endpoint?: string }) => LookupClients;

export async function findTarget(
  options: TargetOptions,
  env: Readonly<Record<string, string | undefined>>,
  lookup: LookupClientsFor,
): Promise<Target> {
  if (options.stack !== undefined && options.local) {
    throw new UsageError("choose --stack or --local, not both");
  }
  const overrides = brokerVariables(env);
  const endpoint = options["endpoint-url"];
  if (options.local) {
    const found = localDeployment(env);
    return {
      env: {
        ...found.env,
        ...overrides,
        ...(options.region !== undefined && { AWS_REGION: options.region }),
      },
      endpoint: endpoint ?? found.endpoint,
      credentials: LOCAL_CREDENTIALS,
    };
  }
  const region = options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? (await profileRegion(lookup));
  const found =
    options.stack === undefined ? {} : await stackSettings(options.stack, lookup({ region, endpoint }));
  return {
    env: { ...env, ...found, ...overrides, ...(region !== undefined && { AWS_REGION: region }) },
    ...(endpoint !== undefined && { endpoint }),
  };
}

function brokerVariables(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] => entry[0].startsWith("BROKER_") && entry[1] !== undefined,
    ),
  );
}

/**
 * The running `npm start`'s settings and emulated AWS. EMULATOR_PORT names the emulated AWS's
 * port as for `npm start` itself; without a record, the settings are a plain `npm start`'s.
 */
function localDeployment(env: Readonly<Record<string, string | undefined>>): {
  env: Readonly<Record<string, string>>;
  endpoint: string;
} {
  const record = readNpmStartRecord();
  const port = env.EMULATOR_PORT;
  if (port !== undefined && port !== "") {
    if (!/^\d+$/.test(port) || Number(port) > 65535) {
      throw new UsageError(`EMULATOR_PORT must be a port number (1-65535), got '${port}'`);
    }
    return { env: record?.env ?? LOCAL_ENV, endpoint: `http://127.0.0.1:${port}` };
  }
  if (!record) {
    throw new DeploymentNotFoundError(
      `no running \`npm start\` found (it records itself in ${npmStartRecordPath()}): start it in another terminal, or set EMULATOR_PORT to its emulated AWS's port`,
    );
  }
  return { env: record.env, endpoint: record.emulatorUrl };
}

/**
 * The deployment's BROKER_* settings from its CloudFormation stack: the stack's FunctionName
 * output, then that function's environment. Outputs are the stacks' public contract (logical ids
 * and physical names are not), and both the CDK app and the release have this one.
 */
export async function stackSettings(
  stackName: string,
  clients: LookupClients,
): Promise<Record<string, string>> {
  const { cloudformation, lambda } = clients;
  try {
    const functionName = await stackOutput(cloudformation, stackName, FUNCTION_NAME_OUTPUT);
    const fn = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: functionName }));
    const settings = brokerVariables(fn.Environment?.Variables ?? {});
    if (settings.BROKER_TABLE_NAME === undefined) {
      throw new DeploymentNotFoundError(
        `function ${functionName} (output ${FUNCTION_NAME_OUTPUT} of stack ${stackName}) has no BROKER_TABLE_NAME: it is not an activation broker`,
      );
    }
    return settings;
  } finally {
    clients.destroy();
  }
}

/** The Region of the shared config profile, as the AWS CLI would find it. */
async function profileRegion(lookup: LookupClientsFor): Promise<string | undefined> {
  const clients = lookup({});
  try {
    return await clients.ssm.config.region();
  } catch {
    return undefined;
  } finally {
    clients.destroy();
  }
}

async function stackOutput(client: CloudFormationClient, stackName: string, key: string): Promise<string> {
  let stacks;
  try {
    ({ Stacks: stacks } = await client.send(new DescribeStacksCommand({ StackName: stackName })));
  } catch (error) {
    // CloudFormation answers an unknown stack with a ValidationError, "Stack with id … does not exist".
    if (error instanceof Error && error.name === "ValidationError" && /does not exist/.test(error.message)) {
      throw new DeploymentNotFoundError(`stack ${stackName} does not exist in this account and Region`, {
        cause: error,
      });
    }
    throw error;
  }
  const value = stacks?.[0]?.Outputs?.find((o) => o.OutputKey === key)?.OutputValue;
  if (!value) {
    throw new DeploymentNotFoundError(
      `stack ${stackName} has no ${key} output: name the broker's Api stack (e.g. ActivationBroker-Api)`,
    );
  }
  return value;
}
