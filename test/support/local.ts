import type { Clock, Sleeper } from "../../src/core/ports";
import { startLocalStack, type LocalStackOptions } from "../../src/entry/local-stack";
import { CapturingLogger } from "./fakes";

/** Real time plus an offset that tests move together with the emulator's clock. */
export class OffsetClock implements Clock, Sleeper {
  offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}

/** The local stack on ephemeral ports, with a controllable clock and captured logs. */
export async function aLocalStack(
  env: Record<string, string> = {},
  options: Partial<LocalStackOptions> = {},
) {
  const clock = new OffsetClock();
  const logger = new CapturingLogger();
  const stack = await startLocalStack({
    brokerPort: 0,
    emulatorPort: 0,
    clock,
    sleeper: clock,
    logger,
    env,
    ...options,
  });
  /** Moves the broker's and the emulator's clocks together. */
  const moveClocks = (seconds: number) => {
    clock.offsetMs = seconds * 1000;
    stack.emulator.controls.setClockOffset(seconds);
  };
  const get = (path: string, init?: RequestInit) => fetch(`${stack.brokerUrl}${path}`, init);
  return { ...stack, clock, logger, moveClocks, get };
}

export const pools = (p: Record<string, unknown>) => JSON.stringify({ pools: p });

export const AGENT_KEY =
  "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA6trOB1iX6Pyh/Tx8yGw0Gql4KMhq7OCHVwcwlv2yMgI/oAyx1pa3JlQoiVNi43MvYl93NpmcUT2peBI9i971y04phpsnJvYGclvKA2ChDrazLOYXX2wi1f5lMpHGyxXQeRHRVeMX3PGxmWSelmu4SQ2XwV5ZglWMLxVrNYNlTwtvVv8sPIWG2bBEIwd17Qd2BeZhZrJ0dXq+nzwOKVjP8Gd5qrX+fMJ/8on7o9qaHRPRweeQCMYHI06vbbmu9IW24gqwZKsXD3TDLv5Jv/HumB+wXiYi1HWB/p2O91ov3yC4i147XiYtECCzUziWnVUrN5ahAgOSTrOeYYvs8GnIXQIDAQAB";

/** What the real SSM Agent sends to register (shared/fixtures/agent-register-request.json). */
export async function registerNode(
  emulatorUrl: string,
  pair: { ActivationId: string; ActivationCode: string },
) {
  const res = await fetch(emulatorUrl, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": "AmazonSSM.RegisterManagedInstance",
    },
    body: JSON.stringify({
      ActivationCode: pair.ActivationCode,
      ActivationId: pair.ActivationId,
      Fingerprint: globalThis.crypto.randomUUID(),
      PublicKey: AGENT_KEY,
      PublicKeyType: "Rsa",
    }),
  });
  return { status: res.status, body: (await res.json()) as { InstanceId?: string; __type?: string } };
}
