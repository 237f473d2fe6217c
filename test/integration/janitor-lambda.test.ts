import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { aLocalStack, pools, registerNode } from "../support/local";

type Stack = Awaited<ReturnType<typeof aLocalStack>>;
let stack: Stack;

beforeAll(async () => {
  stack = await aLocalStack({ BROKER_POOLS: pools({ web: { registrationLimit: 1 } }) });
});
afterAll(async () => {
  await stack?.close();
});

/**
 * The scheduled janitor as Lambda runs it: configured by its environment only, against the
 * emulated AWS found through AWS_ENDPOINT_URL; its metrics are EMF lines on stdout.
 */
it("cleans up, publishes slots and tier headroom as EMF, and never prints a code", async () => {
  const codes: string[] = [];
  for (let i = 0; i < 3; i++) {
    const pair = (await (await stack.get("/activations/web")).json()) as {
      ActivationId: string;
      ActivationCode: string;
    };
    codes.push(pair.ActivationCode);
    expect((await registerNode(stack.emulatorUrl, pair)).status).toBe(200);
  }
  // The broker answers before its background refill has retired what it dropped (the code goes
  // with it); the janitor below would otherwise race it for that parameter.
  await stack.broker.vendor.idle();
  Object.assign(process.env, {
    AWS_REGION: stack.settings.region,
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
    AWS_ENDPOINT_URL: stack.emulatorUrl,
    BROKER_TABLE_NAME: stack.settings.tableName,
    BROKER_DEPLOYMENT: stack.settings.deployment,
    BROKER_DEFAULT_IAM_ROLE: "SSMServiceRole",
    BROKER_POOLS: pools({ web: { registrationLimit: 1 } }),
  });
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  const logSpy = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
    lines.push(args.map(String).join(" "));
  });
  let summary;
  try {
    const { handler } = await import("../../src/entry/janitor");
    summary = await handler({});
  } finally {
    spy.mockRestore();
    logSpy.mockRestore();
  }
  // Three superseded activations with every slot registered: deleted (their codes went with the
  // refills that dropped them; at limit 1 the third vend's refill drops the activation it used
  // and makes the next one current).
  expect(summary).toMatchObject({ deletedActivations: 3, deletedParameters: 0, hybridNodes: 3 });
  const output = lines.join("\n");
  const emf = lines
    .flatMap((l) => l.split("\n"))
    .filter((l) => l.includes('"_aws"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const slots = emf.find((m) => m.SlotsLeft !== undefined);
  // The current activation is the one the last refill made: its one slot is left.
  expect(slots).toMatchObject({ Pool: "web", SlotsLeft: 1, service: "activation-broker" });
  expect(emf.find((m) => m.TierHeadroomPercent !== undefined)).toMatchObject({
    TierHeadroomPercent: 99.7,
    ManagedNodes: 3,
  });
  for (const code of codes) expect(output).not.toContain(code);
});
