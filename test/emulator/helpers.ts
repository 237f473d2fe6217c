import { readFileSync } from "node:fs";

/** The request SSM Agent sends for `-register` (recorded in ./fixtures/agent-register-request.json). */
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
