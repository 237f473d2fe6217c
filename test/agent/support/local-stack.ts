/**
 * The one place the install.sh tests get their broker and emulated SSM from: the real local
 * stack (src/entry/local-stack.ts), on ephemeral loopback ports.
 *
 * The tests need: GET <brokerUrl>/ and /activations/{pool} (docs/http-api.md) with pools
 * "default" (served at /), "web" and the EKS pool "eks" (GET /nodeconfig.yaml?pool=eks), an
 * unknown pool answering 404 PoolNotFound, and the emulator at
 * <emulatorUrl> answering RegisterManagedInstance and DescribeInstanceInformation.
 */
import { appendFileSync } from "node:fs";
import { LOCAL_REGION, startLocalStack } from "../../../src/entry/local-stack";
import { readableLogger } from "../../../src/logging";

export interface AgentTestStack {
  readonly brokerUrl: string;
  readonly emulatorUrl: string;
  /** The region the broker's answers carry. */
  readonly region: string;
  /** The pool table in the emulated DynamoDB. */
  readonly tableName: string;
  close(): Promise<void>;
}

/** `logFile`: where the broker's log lines go (the suites read its security WARNs). */
export async function startStackForAgentTests(logFile: string): Promise<AgentTestStack> {
  const stack = await startLocalStack({
    brokerPort: 0,
    emulatorPort: 0,
    host: "127.0.0.1",
    env: {
      BROKER_POOLS: JSON.stringify({
        pools: {
          default: { registrationLimit: 1000 },
          web: { registrationLimit: 3 },
          // The exhaustion-theft scenario (exhaustion-theft.bats): a thief and 9 honest servers.
          theft: { registrationLimit: 10 },
          // An EKS Hybrid Nodes pool for install-eks.sh (docs/eks.md); the local Region.
          eks: {
            eksClusterArn: `arn:aws:eks:${LOCAL_REGION}:123456789012:cluster/bats`,
            registrationLimit: 100,
          },
          "eks-theft": {
            eksClusterArn: `arn:aws:eks:${LOCAL_REGION}:123456789012:cluster/bats`,
            registrationLimit: 3,
          },
        },
      }),
    },
    logger: readableLogger("INFO", (line) => appendFileSync(logFile, line)),
  });
  return {
    brokerUrl: stack.brokerUrl,
    emulatorUrl: stack.emulatorUrl,
    region: stack.settings.region,
    tableName: stack.settings.tableName,
    close: () => stack.close(),
  };
}
