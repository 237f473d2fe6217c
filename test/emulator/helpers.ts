import { readFileSync } from "node:fs";
import { SSMClient } from "@aws-sdk/client-ssm";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { Emulator } from "../../emulator/server";

export const credentials = { accessKeyId: "test", secretAccessKey: "test" };

// maxAttempts 1: a test that expects an error must see the emulator's answer, not the SDK's retries.
export function ssmClient(emulator: Emulator, maxAttempts = 1): SSMClient {
  return new SSMClient({ endpoint: emulator.url, region: emulator.region, credentials, maxAttempts });
}

export function dynamoDbClient(emulator: Emulator, maxAttempts = 1): DynamoDBClient {
  return new DynamoDBClient({ endpoint: emulator.url, region: emulator.region, credentials, maxAttempts });
}

/** The request SSM Agent sends for `-register` (copy of shared/fixtures/agent-register-request.json). */
export interface AgentRegisterFixture {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Record<string, string>;
}

export const agentFixture = JSON.parse(
  readFileSync(new URL("./fixtures/agent-register-request.json", import.meta.url), "utf8"),
) as AgentRegisterFixture;

/**
 * Replays the recorded agent request with the placeholders filled in: same method, path,
 * headers and key order, unsigned. Content-Length is left to fetch, since it must match the
 * substituted body.
 */
export async function registerLikeAgent(
  url: string,
  activationId: string,
  activationCode: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = JSON.stringify(agentFixture.body)
    .replace("<ACTIVATION-ID>", activationId)
    .replace("<ACTIVATION-CODE>", activationCode);
  const headers = Object.fromEntries(
    Object.entries(agentFixture.headers).filter(([name]) => name.toLowerCase() !== "content-length"),
  );
  const response = await fetch(`${url}${agentFixture.path}`, { method: agentFixture.method, headers, body });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

export const MANAGED_INSTANCE_ID = /^mi-[0-9a-f]{17}$/;
export const DAY_SECONDS = 24 * 60 * 60;
