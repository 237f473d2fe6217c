import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SSMClient } from "@aws-sdk/client-ssm";
import { StandardRetryStrategy } from "@smithy/core/retry";

type StandardRetryToken = Awaited<ReturnType<StandardRetryStrategy["acquireInitialRetryToken"]>>;
type RetryErrorInfo = Parameters<StandardRetryStrategy["refreshRetryTokenForRetry"]>[1];

export interface AwsClientsOptions {
  /** Defaults to the SDK's own resolution (AWS_REGION, profile). */
  readonly region?: string;
  /**
   * One endpoint for every service (the local emulated AWS). Without it the SDK still honours
   * AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>, so only pass it to override those.
   */
  readonly endpoint?: string;
  /** A named profile of the shared AWS config (the admin CLI's --profile); default AWS_PROFILE. */
  readonly profile?: string;
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

/**
 * The SDK's standard retry mode, with a retry quota that heals as soon as AWS answers again.
 *
 * Standard mode keeps a quota of 500 tokens per client: each retry of a transient error costs 14
 * (a throttle 5), and a call that succeeds at its first attempt gives back 1. A long outage drains
 * it, which is its purpose (no retry storm against a service that is down); but afterwards the
 * client retries nothing until a dozen first-attempt successes have paid a single retry back, so
 * a partly recovered AWS (some calls still failing) looks far worse than it is. Measured on the
 * emulated AWS, 60 vends at a 30% per-call fault rate: 60 of 60 from a rested process, 45 of 60
 * after a full outage had drained the quota (to 9 tokens). Here a success refills the quota at
 * once: while every call fails it drains as before, and the first answer ends that.
 */
export class PromptRecoveryRetryStrategy implements Pick<
  StandardRetryStrategy,
  "acquireInitialRetryToken" | "refreshRetryTokenForRetry" | "recordSuccess"
> {
  private standard: StandardRetryStrategy;

  constructor(private readonly maxAttempts: number) {
    this.standard = new StandardRetryStrategy(maxAttempts);
  }

  acquireInitialRetryToken(scope: string): Promise<StandardRetryToken> {
    return this.standard.acquireInitialRetryToken(scope);
  }

  refreshRetryTokenForRetry(
    token: StandardRetryToken,
    errorInfo: RetryErrorInfo,
  ): Promise<StandardRetryToken> {
    return this.standard.refreshRetryTokenForRetry(token, errorInfo);
  }

  /** AWS answered: the quota is full again (tokens carry no link to the quota that issued them). */
  recordSuccess(): void {
    this.standard = new StandardRetryStrategy(this.maxAttempts);
  }

  /** Tokens left in the quota (what standard mode's getCapacity says). */
  capacity(): number {
    return this.standard.getCapacity();
  }
}

/**
 * The configuration of every SDK client this package builds — the request path's here, the Lambda
 * self-invocation's (lambda-standby-refill.ts) and the admin CLI's lookup (lookup-clients.ts): the
 * short timeouts and the retry strategy above, one quota per client as the SDK's own strategy
 * keeps one. Each service's client is built in a module of its own, so that a bundle carries
 * only the SDK clients its entry point uses.
 */
export function clientConfig(options: AwsClientsOptions = {}) {
  const maxAttempts = options.maxAttempts ?? MAX_ATTEMPTS;
  return {
    maxAttempts,
    retryStrategy: new PromptRecoveryRetryStrategy(maxAttempts),
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
    profile: options.profile,
    ...(options.credentials !== undefined && { credentials: { ...options.credentials } }),
  };
}

export function createAwsClients(options: AwsClientsOptions = {}): AwsClients {
  return { dynamodb: new DynamoDBClient(clientConfig(options)), ssm: new SSMClient(clientConfig(options)) };
}
