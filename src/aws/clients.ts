import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SSMClient } from "@aws-sdk/client-ssm";

export interface AwsClientsOptions {
  /** Defaults to the SDK's own resolution (AWS_REGION, profile). */
  readonly region?: string;
  /**
   * One endpoint for every service (the local emulated AWS). Without it the SDK still honours
   * AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>, so only pass it to override those.
   */
  readonly endpoint?: string;
  /** Static credentials (tests, local mode); otherwise the SDK's default provider chain. */
  readonly credentials?: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
  };
  /** Total attempts per call including the first; defaults to 3. */
  readonly maxAttempts?: number;
  /** Override the short defaults, e.g. for a broker far from its region or an in-process emulator. */
  readonly timeouts?: { readonly connectionMs?: number; readonly requestMs?: number };
}

export interface AwsClients {
  readonly dynamodb: DynamoDBClient;
  readonly ssm: SSMClient;
}

/**
 * A vend sits behind API Gateway's 29 s integration timeout and a client that retries: a call
 * stuck for the SDK's default (no request timeout at all) would hold the rotation lease and the
 * caller hostage. Short timeouts plus three attempts fail fast enough for the client to retry.
 */
const CONNECTION_TIMEOUT_MS = 1_000;
const REQUEST_TIMEOUT_MS = 3_000;
const MAX_ATTEMPTS = 3;

export function createAwsClients(options: AwsClientsOptions = {}): AwsClients {
  const config = {
    maxAttempts: options.maxAttempts ?? MAX_ATTEMPTS,
    requestHandler: {
      connectionTimeout: options.timeouts?.connectionMs ?? CONNECTION_TIMEOUT_MS,
      requestTimeout: options.timeouts?.requestMs ?? REQUEST_TIMEOUT_MS,
      // Without it the handler only logs a warning when requestTimeout passes and keeps waiting
      // (the option was long a socket-idle timeout, so the SDK made the real one opt-in).
      throwOnRequestTimeout: true,
    },
    // Unset, the SDK takes them from AWS_REGION and AWS_ENDPOINT_URL (clients.test.ts).
    region: options.region,
    endpoint: options.endpoint,
    ...(options.credentials !== undefined && { credentials: { ...options.credentials } }),
  };
  return { dynamodb: new DynamoDBClient(config), ssm: new SSMClient(config) };
}
