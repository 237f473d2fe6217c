/**
 * The one place the install.sh tests get their broker and emulated SSM from: the real local
 * stack (src/entry/local-stack.ts), on ephemeral loopback ports.
 *
 * The tests need: GET <brokerUrl>/ and /activations/{pool} (docs/http-api.md) with pools
 * "default" (served at /), "web" and the EKS pool "eks" (GET /nodeconfig.yaml?pool=eks), an
 * unknown pool answering 404 PoolNotFound, and the emulator at
 * <emulatorUrl> answering RegisterManagedInstance and DescribeInstanceInformation.
 */
import { LOCAL_REGION, startLocalStack } from "../../../src/entry/local-stack";
import type { Logger } from "../../../src/core/ports";

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface AgentTestStack {
  readonly brokerUrl: string;
  readonly emulatorUrl: string;
  /** The region the broker's answers carry. */
  readonly region: string;
  /** The pool table in the emulated DynamoDB. */
  readonly tableName: string;
  close(): Promise<void>;
}

export async function startStackForAgentTests(): Promise<AgentTestStack> {
  const stack = await startLocalStack({
    brokerPort: 0,
    emulatorPort: 0,
    host: "127.0.0.1",
    env: {
      BROKER_POOLS: JSON.stringify({
        pools: {
          default: { registrationLimit: 1000 },
          web: { registrationLimit: 3 },
          // An EKS Hybrid Nodes pool for install-eks.sh (docs/eks.md); the local Region.
          eks: {
            eksClusterArn: `arn:aws:eks:${LOCAL_REGION}:123456789012:cluster/bats`,
            registrationLimit: 100,
          },
        },
      }),
    },
    logger: quiet,
  });
  return {
    brokerUrl: stack.brokerUrl,
    emulatorUrl: stack.emulatorUrl,
    region: stack.settings.region,
    tableName: stack.settings.tableName,
    close: () => stack.close(),
  };
}
