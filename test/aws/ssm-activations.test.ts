import { randomUUID } from "node:crypto";
import type { SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ActivationRejectedError, ThrottledError, UpstreamUnavailableError } from "../../src/core/errors";
import type { CreateActivationRequest } from "../../src/core/ports";
import { TAG_DEPLOYMENT } from "../../src/core/vend-policy";
import { SsmActivations } from "../../src/aws/ssm-activations";
import { SsmActivationInventory } from "../../src/aws/ssm-inventory";
import { TEST_ROLE, recordingSends, startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { caught, failingClient, sdkError } from "../support/sdk-stubs";

const HOUR = 3_600_000;

describe("SsmActivations", () => {
  let aws: EmulatedAws;
  let deployment: string;
  let activations: SsmActivations;
  let noRetry: SsmActivations;
  let noRetryClient: SSMClient;

  beforeAll(async () => {
    aws = await startEmulatedAws();
    deployment = `d-${randomUUID().slice(0, 8)}`;
    activations = new SsmActivations(aws.ssm);
    noRetryClient = aws.clients({ maxAttempts: 1 }).ssm;
    noRetry = new SsmActivations(noRetryClient);
  });
  afterAll(async () => {
    await aws?.close();
  });
  afterEach(() => {
    aws.emulator.controls.clearFaults();
  });

  function request(overrides: Partial<CreateActivationRequest> = {}): CreateActivationRequest {
    return {
      pool: "web",
      generation: 1,
      iamRole: TEST_ROLE,
      registrationLimit: 25,
      expiresAt: Math.floor((Date.now() + 24 * HOUR) / 1000) * 1000,
      tags: { [TAG_DEPLOYMENT]: deployment, team: "platform" },
      ...overrides,
    };
  }

  it("sends every field of the request to CreateActivation", async () => {
    const req = request({ defaultInstanceName: "web-node", description: "web servers" });
    const { activationId } = await activations.create(req);
    const seen = aws.emulator.controls.activations().find((a) => a.activationId === activationId);
    expect(seen).toMatchObject({
      iamRole: TEST_ROLE,
      registrationLimit: 25,
      defaultInstanceName: "web-node",
      description: "web servers",
      expirationDate: new Date(req.expiresAt),
    });
    expect(seen?.tags).toEqual(
      expect.arrayContaining([
        { Key: TAG_DEPLOYMENT, Value: deployment },
        { Key: "team", Value: "platform" },
      ]),
    );
  });

  it("lists across DescribeActivations pages (the janitor's inventory)", async () => {
    const paged = `paged-${randomUUID().slice(0, 8)}`;
    const tags = { [TAG_DEPLOYMENT]: paged };
    const created = await Promise.all(
      Array.from({ length: 60 }, () => activations.create(request({ tags }))),
    );
    aws.emulator.controls.resetCounters();
    const pages: number[] = [];
    const listed = await new SsmActivationInventory(aws.ssm, (_op, _page, n) => pages.push(n)).list();
    const ours = listed.filter((a) => a.tags[TAG_DEPLOYMENT] === paged).map((a) => a.activationId);
    expect(ours.sort()).toEqual(created.map((c) => c.activationId).sort());
    expect(aws.emulator.controls.counters()["ssm:DescribeActivations"]).toBeGreaterThan(1);
    expect(pages.length).toBe(aws.emulator.controls.counters()["ssm:DescribeActivations"]);
  });

  it("reports an expired activation as expired, with times in epoch ms", async () => {
    const req = request({ expiresAt: Math.floor((Date.now() + HOUR) / 1000) * 1000 });
    const { activationId } = await activations.create(req);
    aws.emulator.controls.setClockOffset(2 * 3600);
    try {
      const listed = (await new SsmActivationInventory(aws.ssm).list()).find(
        (a) => a.activationId === activationId,
      );
      expect(listed).toMatchObject({ expired: true, expiresAt: req.expiresAt });
    } finally {
      aws.emulator.controls.setClockOffset(0);
    }
  });

  describe("refusals", () => {
    it("turns a ValidationException into ActivationRejectedError naming it", async () => {
      const error = await caught(activations.create(request({ expiresAt: Date.now() - HOUR })));
      expect(error).toBeInstanceOf(ActivationRejectedError);
      expect((error as Error).message).toContain("ValidationException");
      expect((error as Error).message).toContain("'web'");
      expect((error as Error).cause).toMatchObject({ name: "ValidationException" });
    });

    it("turns an out-of-range registration limit into ActivationRejectedError", async () => {
      const error = await caught(activations.create(request({ registrationLimit: 1001 })));
      expect(error).toBeInstanceOf(ActivationRejectedError);
    });

    it("turns InvalidParameters into ActivationRejectedError", async () => {
      const stub = new SsmActivations(failingClient(sdkError("InvalidParameters")));
      await expect(stub.create(request())).rejects.toBeInstanceOf(ActivationRejectedError);
    });

    it("turns a sustained server error into UpstreamUnavailableError, not a refusal", async () => {
      aws.emulator.controls.injectFault({ service: "ssm", operation: "CreateActivation", kind: "error" });
      const error = await caught(noRetry.create(request()));
      expect(error).not.toBeInstanceOf(ActivationRejectedError);
      expect(error).toBeInstanceOf(UpstreamUnavailableError);
      expect(error).toMatchObject({ service: "SSM", cause: { name: "InternalServerError" } });
    });
  });

  describe("answers it does not expect", () => {
    it("rethrows an error that is neither a refusal nor transient as it is, not as SSM's refusal", async () => {
      // What the SDK throws when it finds no credentials: no $fault, no HTTP status.
      const noCredentials = Object.assign(new Error("Could not load credentials from any providers"), {
        name: "CredentialsProviderError",
      });
      await expect(new SsmActivations(failingClient(noCredentials)).create(request())).rejects.toBe(
        noCredentials,
      );
    });

    it.each([{}, { ActivationId: "a-1" }, { ActivationCode: "code" }])(
      "fails when CreateActivation answers without an id or a code (%j)",
      async (answer) => {
        const client = { send: async () => answer } as unknown as SSMClient;
        await expect(new SsmActivations(client).create(request())).rejects.toThrow(
          "CreateActivation answered without an activation id or code.",
        );
      },
    );
  });

  describe("describe", () => {
    it("asks SSM for that one activation, not for a page of the account's", async () => {
      const { activationId } = await activations.create(request());
      const { client, sent } = recordingSends(aws.ssm);
      expect(await new SsmActivations(client).describe(activationId)).toMatchObject({ activationId });
      expect(sent).toEqual([
        {
          command: "DescribeActivationsCommand",
          input: { Filters: [{ FilterKey: "ActivationIds", FilterValues: [activationId] }] },
        },
      ]);
    });
  });

  describe("throttling", () => {
    it.each([
      ["create", "CreateActivation", (a: SsmActivations) => a.create(request())],
      ["delete", "DeleteActivation", (a: SsmActivations) => a.delete(randomUUID())],
      ["list", "DescribeActivations", () => new SsmActivationInventory(noRetryClient).list()],
    ] as const)("turns a throttled %s (%s) into ThrottledError", async (_name, operation, call) => {
      aws.emulator.controls.injectFault({ service: "ssm", operation, kind: "throttle" });
      const error = await caught(call(noRetry));
      expect(error).toBeInstanceOf(ThrottledError);
      expect(error).toMatchObject({ service: "SSM", retryAfterSeconds: 2 });
      expect((error as Error).cause).toMatchObject({ name: "ThrottlingException" });
    });

    it("treats TooManyUpdates as throttling", async () => {
      const stub = new SsmActivations(failingClient(sdkError("TooManyUpdates")));
      await expect(stub.create(request())).rejects.toBeInstanceOf(ThrottledError);
      await expect(stub.delete(randomUUID())).rejects.toBeInstanceOf(ThrottledError);
    });
  });

  describe("delete", () => {
    it.each(["InvalidActivation", "InvalidActivationId"])("treats %s as already gone", async (name) => {
      const stub = new SsmActivations(failingClient(sdkError(name)));
      await expect(stub.delete(randomUUID())).resolves.toBeUndefined();
    });

    it("rethrows anything else", async () => {
      const stub = new SsmActivations(failingClient(sdkError("AccessDeniedException")));
      await expect(stub.delete(randomUUID())).rejects.toMatchObject({ name: "AccessDeniedException" });
    });
  });
});
