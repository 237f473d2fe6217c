import { randomUUID } from "node:crypto";
import { inspect } from "node:util";
import { GetParameterCommand, ListTagsForResourceCommand, type SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, ThrottledError, UpstreamUnavailableError } from "../../src/core/errors";
import type { ActivationPair } from "../../src/core/ports";
import { TAG_DEPLOYMENT, TAG_POOL } from "../../src/core/vend-policy";
import { DEFAULT_PARAMETER_PREFIX } from "../../src/aws/naming";
import { ParameterStoreSecrets } from "../../src/aws/parameter-store-secrets";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { caught } from "../support/sdk-stubs";

/**
 * Every way an error can reach a log or a response: message, stack, String(), JSON, and
 * util.inspect with hidden (non-enumerable) fields such as the SDK's $response, down the cause chain.
 */
function renderings(error: unknown): string[] {
  const out: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 10; depth++) {
    if (current instanceof Error) out.push(current.message, current.stack ?? "", String(current));
    out.push(JSON.stringify(current) ?? "", inspect(current, { showHidden: true, depth: 10 }));
    current = current instanceof Error ? current.cause : undefined;
  }
  return out;
}

function expectNoCode(error: unknown, code: string): void {
  expect(error).toBeDefined();
  for (const text of renderings(error)) expect(text).not.toContain(code);
}

/** A distinctive code, so a leak cannot hide behind a common substring. */
const newCode = () => `LEAK${randomUUID().replace(/-/g, "").slice(0, 16)}`;

describe("ParameterStoreSecrets", () => {
  let aws: EmulatedAws;
  let prefix: string;
  let secrets: ParameterStoreSecrets;
  let noRetry: ParameterStoreSecrets;

  beforeAll(async () => {
    aws = await startEmulatedAws();
    prefix = `/broker-test/${randomUUID().slice(0, 8)}`;
    secrets = new ParameterStoreSecrets(aws.ssm, { prefix, kmsKeyId: "alias/broker", deployment: "prod" });
    noRetry = new ParameterStoreSecrets(aws.clients({ maxAttempts: 1 }).ssm, {
      prefix,
      kmsKeyId: "alias/broker",
    });
  });
  afterAll(async () => {
    await aws?.close();
  });
  afterEach(() => {
    aws.emulator.controls.clearFaults();
  });

  function secret(): ActivationPair {
    return {
      pool: "web",
      activationId: randomUUID(),
      activationCode: newCode(),
      expiresAt: Date.UTC(2026, 11, 1),
    };
  }

  describe("storage format", () => {
    it("stores a SecureString document at prefix/pool/activationId, tagged with pool and deployment", async () => {
      const s = secret();
      await secrets.put(s);
      const name = `${prefix}/web/${s.activationId}`;
      const { Parameter } = await aws.ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
      expect(Parameter?.Type).toBe("SecureString");
      expect(JSON.parse(Parameter?.Value ?? "")).toEqual({
        ActivationId: s.activationId,
        ActivationCode: s.activationCode,
        ExpirationDate: "2026-12-01T00:00:00.000Z",
      });
      const { TagList } = await aws.ssm.send(
        new ListTagsForResourceCommand({ ResourceType: "Parameter", ResourceId: name }),
      );
      expect(TagList).toEqual(
        expect.arrayContaining([
          { Key: TAG_POOL, Value: "web" },
          { Key: TAG_DEPLOYMENT, Value: "prod" },
        ]),
      );
    });

    it("never overwrites a stored code", async () => {
      const s = secret();
      await secrets.put(s);
      await secrets.put({ ...s, activationCode: newCode() });
      expect((await secrets.getMany(s.pool, [s.activationId]))[0]?.activationCode).toBe(s.activationCode);
    });

    it("defaults to the documented prefix and the AWS managed key", async () => {
      const calls: unknown[] = [];
      const recording = {
        send: async (command: { input: unknown }) => {
          calls.push(command.input);
          return {};
        },
      } as unknown as SSMClient;
      await new ParameterStoreSecrets(recording).put(secret());
      expect(calls[0]).toMatchObject({
        Name: expect.stringMatching(new RegExp(`^${DEFAULT_PARAMETER_PREFIX}/web/`)),
        // The documented default, spelled out: comparing with the constant would accept any value.
        KeyId: "alias/aws/ssm",
        Type: "SecureString",
        Overwrite: false,
      });
    });

    it.each(["activation-broker", "/a/", "/a//b", "/a b"])(
      "rejects the prefix %j, saying what it must look like",
      (bad) => {
        const build = () => new ParameterStoreSecrets(aws.ssm, { prefix: bad });
        expect(build).toThrow(ConfigError);
        expect(build).toThrow(
          `Parameter prefix '${bad}' must look like /name or /name/sub (no trailing slash).`,
        );
      },
    );
  });

  describe("errors", () => {
    it("asks for every activation's parameter, decrypted, in one GetParameters call", async () => {
      const calls: { input: unknown; name: string }[] = [];
      const recording = {
        send: async (command: { input: unknown; constructor: { name: string } }) => {
          calls.push({ input: command.input, name: command.constructor.name });
          return {};
        },
      } as unknown as SSMClient;
      expect(await new ParameterStoreSecrets(recording, { prefix }).getMany("web", ["a-1", "a-2"])).toEqual(
        [],
      );
      expect(calls).toEqual([
        {
          name: "GetParametersCommand",
          input: { Names: [`${prefix}/web/a-1`, `${prefix}/web/a-2`], WithDecryption: true },
        },
      ]);
    });

    it.each([
      ["not JSON", "not json"],
      ["JSON null", "null"],
      ["a bare string", JSON.stringify("text")],
      [
        "another activation's document",
        JSON.stringify({
          ActivationId: "other",
          ActivationCode: "c",
          ExpirationDate: "2026-12-01T00:00:00.000Z",
        }),
      ],
      ["a document without an expiry", JSON.stringify({ ActivationId: "a-1", ActivationCode: "c" })],
    ])(
      "reports a value that is %s as not an activation document, naming the activation",
      async (_what, value) => {
        const client = {
          send: async () => ({ Parameters: [{ Name: `${DEFAULT_PARAMETER_PREFIX}/web/a-1`, Value: value }] }),
        } as unknown as SSMClient;
        await expect(new ParameterStoreSecrets(client).getMany("web", ["a-1"])).rejects.toThrow(
          new Error("Parameter for activation a-1 does not hold a valid activation document."),
        );
      },
    );

    it.each([
      ["put", "PutParameter", (s: ParameterStoreSecrets) => s.put(secret())],
      ["getMany", "GetParameters", (s: ParameterStoreSecrets) => s.getMany("web", [randomUUID()])],
      ["delete", "DeleteParameter", (s: ParameterStoreSecrets) => s.delete("web", randomUUID())],
    ] as const)("turns a throttled %s (%s) into ThrottledError", async (_name, operation, call) => {
      aws.emulator.controls.injectFault({ service: "ssm", operation, kind: "throttle" });
      const error = await caught(call(noRetry));
      expect(error).toBeInstanceOf(ThrottledError);
      expect(error).toMatchObject({ service: "Parameter Store", retryAfterSeconds: 1 });
      // The operation is what tells an operator which permission or quota to look at.
      expect((error as Error).cause).toMatchObject({
        name: "ThrottlingException",
        message: expect.stringMatching(new RegExp(`^${operation} failed with ThrottlingException`)),
      });
    });

    it("turns a server error into UpstreamUnavailableError whose redacted cause keeps the SDK error's name", async () => {
      aws.emulator.controls.injectFault({ service: "ssm", operation: "DeleteParameter", kind: "error" });
      const error = await noRetry.delete("web", randomUUID()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamUnavailableError);
      expect(error).toMatchObject({
        cause: { name: "InternalServerError", $metadata: { httpStatusCode: 500 } },
      });
    });
  });

  describe("the Activation Code never appears in an error (I6)", () => {
    it.each(["error", "throttle"] as const)("when PutParameter fails over the wire (%s)", async (kind) => {
      const s = secret();
      aws.emulator.controls.injectFault({ service: "ssm", operation: "PutParameter", kind });
      expectNoCode(await caught(noRetry.put(s)), s.activationCode);
    });

    it("when PutParameter is refused by the service (a value it will not store)", async () => {
      // Parameter Store refuses values that reference other parameters; the code is in the value.
      const s = { ...secret(), activationCode: `{{ssm:${newCode()}}}` };
      const error = await caught(secrets.put(s));
      expect(error).toMatchObject({ name: "ValidationException" });
      expectNoCode(error, s.activationCode.slice(6, -2));
    });

    it("when the SDK error quotes the request's value (as AWS validation messages do)", async () => {
      const s = secret();
      const echoing = Object.assign(
        new Error(
          `1 validation error detected: Value '{"ActivationCode":"${s.activationCode}"}' at 'value' failed`,
        ),
        {
          name: "ValidationException",
          $fault: "client",
          $metadata: { httpStatusCode: 400, requestId: "r-1" },
        },
      );
      Object.defineProperty(echoing, "$response", { value: { body: s.activationCode }, enumerable: false });
      const client = { send: async () => Promise.reject(echoing) } as unknown as SSMClient;
      const error = await caught(new ParameterStoreSecrets(client).put(s));
      expectNoCode(error, s.activationCode);
      expect(error).toMatchObject({
        name: "ValidationException",
        $metadata: { httpStatusCode: 400, requestId: "r-1" },
      });
    });

    it("when GetParameters' response cannot be parsed by the SDK (the body holds the decrypted code)", async () => {
      const code = newCode();
      const deserialization = Object.assign(new SyntaxError(`Unexpected token in JSON at "${code}"`), {
        $responseBodyText: `{"Parameter":{"Value":"${code}"`,
      });
      const client = { send: async () => Promise.reject(deserialization) } as unknown as SSMClient;
      expectNoCode(await caught(new ParameterStoreSecrets(client).getMany("web", [randomUUID()])), code);
    });

    it("when the stored value is not a valid document", async () => {
      const code = newCode();
      const activationId = randomUUID();
      for (const value of [
        `not json ${code}`,
        JSON.stringify({ ActivationId: "other", ActivationCode: code }),
      ]) {
        const client = {
          send: async () => ({
            Parameters: [{ Name: `${DEFAULT_PARAMETER_PREFIX}/web/${activationId}`, Value: value }],
          }),
        } as unknown as SSMClient;
        expectNoCode(await caught(new ParameterStoreSecrets(client).getMany("web", [activationId])), code);
      }
    });

    it("this check can fail: it finds a code hidden in a cause's non-enumerable field", () => {
      const code = newCode();
      const cause = new Error("outer");
      Object.defineProperty(cause, "$response", { value: { body: code }, enumerable: false });
      expect(() => expectNoCode(new Error("wrapper", { cause }), code)).toThrow();
    });
  });
});
