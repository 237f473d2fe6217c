/**
 * What every admin command shares: the AWS-CLI-like global options, the deployment's settings
 * (the same BROKER_* environment as `serve`), the clients, progress on stderr, and the mapping of
 * errors to one line and an exit code.
 */
import type { AwsClientsOptions } from "../aws/clients";
import type { LookupClients } from "../aws/lookup-clients";
import type { PageProgress } from "../aws/dynamodb-pool-inventory";
import type { Operations } from "../composition";
import { BrokerError } from "../core/errors";
import type { Logger } from "../core/ports";
import type { Vendor } from "../core/vend";
import { loadSettings, processEnvironment, type Settings } from "../settings";
import { DeploymentNotFoundError, findTarget, type LookupClientsFor, type Target } from "./deployment";
import { createOut, type Out } from "./output";

/** Documented in `activation-broker --help` and docs/operations.md. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  refused: 4,
  unavailable: 5,
  partial: 6,
} as const;

export const GLOBAL_OPTIONS = {
  stack: { type: "string" },
  local: { type: "boolean" },
  region: { type: "string" },
  "endpoint-url": { type: "string" },
  profile: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export const GLOBAL_HELP = `Global options:
  --stack NAME           the deployment of this CloudFormation stack (the broker's Api stack, e.g.
                         ActivationBroker-Api): its settings come from the broker function
  --local                the running \`npm start\` (its emulated AWS and settings)
  --region REGION        AWS Region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's)
  --endpoint-url URL     send every AWS call here (default: AWS_ENDPOINT_URL)
  --profile NAME         named profile of the shared AWS config (default: AWS_PROFILE)
  --json                 machine-readable output
  -h, --help             this help
Without --stack or --local, the settings are the BROKER_* environment variables, as for serve;
with them, a BROKER_* variable that is set still overrides what was found.`;

import { UsageError } from "./args";

export { UsageError };

export interface GlobalValues {
  stack?: string | undefined;
  local?: boolean | undefined;
  region?: string | undefined;
  "endpoint-url"?: string | undefined;
  profile?: string | undefined;
  json?: boolean | undefined;
}

/** The deployment's core and inventories on its AWS clients: built by src/entry/cli.ts. */
export interface Deployment {
  readonly operations: Operations;
  /** The request path, for `get`, `rotate`, `revoke` and `status`, built on first use. */
  vendor(): Vendor;
  close(): void;
}

export type Connect = (
  settings: Settings,
  aws: {
    readonly endpoint?: string;
    readonly credentials?: Target["credentials"];
    readonly profile?: string;
    readonly logger: Logger;
    readonly onPage: PageProgress;
  },
) => Deployment;

/** What src/entry/cli.ts builds for the admin commands: the deployment, and the lookup's clients. */
export interface AdminWiring {
  readonly connect: Connect;
  readonly lookup: (options: Pick<AwsClientsOptions, "region" | "endpoint" | "profile">) => LookupClients;
}

export interface Context {
  readonly settings: Settings;
  readonly out: Out;
  readonly operations: Operations;
  vendor(): Vendor;
  close(): void;
}

/** The CLI speaks on stdout; only failures of single janitor actions reach stderr. */
const cliLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: (message, extra) =>
    process.stderr.write(
      `activation-broker: ${message}${extra?.resource ? ` (${String(extra.resource)})` : ""}\n`,
    ),
};

export async function createContext(values: GlobalValues, wiring: AdminWiring): Promise<Context> {
  // --profile goes to every client as configuration (the SDK's `profile`), never into the
  // environment: this process's other clients, and its children, keep their own.
  const profile = values.profile !== undefined ? { profile: values.profile } : {};
  const lookup: LookupClientsFor = (where) => wiring.lookup({ ...where, ...profile });
  const target = await findTarget(values, processEnvironment(), lookup);
  const settings = loadSettings(target.env);
  const deployment = wiring.connect(settings, {
    ...(target.endpoint !== undefined && { endpoint: target.endpoint }),
    ...(target.credentials !== undefined && { credentials: target.credentials }),
    ...profile,
    logger: cliLogger,
    onPage: progress(),
  });
  return {
    settings,
    out: createOut(values.json === true),
    operations: deployment.operations,
    vendor: () => deployment.vendor(),
    close: () => deployment.close(),
  };
}

/** Progress on stderr while a listing takes more than one page (stdout stays the answer). */
function progress(): PageProgress {
  return (operation, page, items) => {
    if (page > 1) process.stderr.write(`activation-broker: ${operation}: page ${page}, ${items} so far\n`);
  };
}

const NOT_FOUND_CODES = new Set(["PoolNotFound", "ActivationNotFound", "NothingToRevoke"]);
const RETRY_LATER = new Set(["Throttled", "UpstreamUnavailable", "RotationInProgress"]);
const AWS_REFUSALS = new Set([
  "AccessDeniedException",
  "AccessDenied",
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "ExpiredTokenException",
  "InvalidClientTokenId",
  "ResourceNotFoundException",
]);
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EAI_AGAIN", "ENOTFOUND"]);

/** One line for stderr (never a stack, never a code) and the documented exit code. */
export function describeFailure(
  error: unknown,
  endpoint: string | undefined,
): { line: string; exit: number } {
  if (error instanceof UsageError) return { line: error.message, exit: EXIT.usage };
  const parseArgsCode = (error as { code?: unknown }).code;
  if (typeof parseArgsCode === "string" && parseArgsCode.startsWith("ERR_PARSE_ARGS")) {
    return { line: (error as Error).message, exit: EXIT.usage };
  }
  if (error instanceof BrokerError) {
    const network = networkCode(error);
    if (network) {
      return {
        line: `cannot reach AWS${endpoint ? ` at ${endpoint}` : ""} (${network}); is the endpoint up?`,
        exit: EXIT.unavailable,
      };
    }
    if (NOT_FOUND_CODES.has(error.code)) return { line: error.message, exit: EXIT.notFound };
    if (RETRY_LATER.has(error.code)) return { line: error.message, exit: EXIT.unavailable };
    if (error.code === "ActivationRejected") return { line: error.message, exit: EXIT.refused };
    const usage = error.code === "InvalidConfiguration" || error.code === "InvalidPoolName";
    return { line: error.message, exit: usage ? EXIT.usage : EXIT.failure };
  }
  if (error instanceof DeploymentNotFoundError) return { line: error.message, exit: EXIT.notFound };
  if (error instanceof Error) {
    if (error.name === "CredentialsProviderError") {
      return {
        line: "no AWS credentials found: set AWS_PROFILE (or --profile), AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use an instance role",
        exit: EXIT.refused,
      };
    }
    if (AWS_REFUSALS.has(error.name))
      return { line: `AWS refused the call: ${error.name}: ${error.message}`, exit: EXIT.refused };
    const network = networkCode(error);
    if (network)
      return {
        line: `cannot reach AWS${endpoint ? ` at ${endpoint}` : ""} (${network})`,
        exit: EXIT.unavailable,
      };
    return { line: `${error.name}: ${error.message.split("\n")[0]}`, exit: EXIT.failure };
  }
  return { line: String(error), exit: EXIT.failure };
}

function networkCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK_CODES.has(code)) return code;
    if (e.name === "TimeoutError") return "timeout";
  }
  return undefined;
}
