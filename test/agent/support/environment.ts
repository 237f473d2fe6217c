/**
 * Starts what the bats suites need (local stack + harness) and returns the environment they read.
 * Used by test/agent/bats.test.ts, and by ./serve.ts to run bats by hand.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startHarness } from "./harness";
import { startStackForAgentTests } from "./local-stack";

export interface BatsEnvironment {
  readonly env: Record<string, string>;
  close(): Promise<void>;
}

export async function startBatsEnvironment(): Promise<BatsEnvironment> {
  const logDirectory = mkdtempSync(join(tmpdir(), "agent-tests-"));
  const brokerLog = join(logDirectory, "broker.log");
  writeFileSync(brokerLog, "");
  const stack = await startStackForAgentTests(brokerLog);
  try {
    const harness = await startHarness(stack.brokerUrl);
    return {
      env: {
        // The real broker, straight.
        AGENT_TEST_BROKER_URL: stack.brokerUrl,
        // The same broker behind the fault-scripting proxy, and the harness itself.
        AGENT_TEST_HARNESS_URL: harness.url,
        // Where the stub agent registers, and where tests list the nodes.
        AGENT_TEST_EMULATOR_URL: stack.emulatorUrl,
        // The region in the broker's answers (bucket paths depend on it).
        AGENT_TEST_REGION: stack.region,
        // The pool table in the emulated DynamoDB (at AGENT_TEST_EMULATOR_URL), to read `issued`.
        AGENT_TEST_TABLE: stack.tableName ?? "",
        // The broker's log, one readable line per entry (security WARNs, access log).
        AGENT_TEST_BROKER_LOG: brokerLog,
      },
      close: async () => {
        await harness.close();
        await stack.close();
        rmSync(logDirectory, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stack.close();
    rmSync(logDirectory, { recursive: true, force: true });
    throw error;
  }
}
