import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import * as errors from "../../src/core/errors";

/** Every concrete error class with arguments that build it. */
const samples: Array<[string, () => errors.BrokerError]> = [
  ["InvalidPoolNameError", () => new errors.InvalidPoolNameError("a b")],
  ["PoolNotFoundError", () => new errors.PoolNotFoundError("nope")],
  ["RotationInProgressError", () => new errors.RotationInProgressError("default", 2)],
  ["ThrottledError", () => new errors.ThrottledError("SSM", 1)],
  ["UpstreamUnavailableError", () => new errors.UpstreamUnavailableError("DynamoDB", 1)],
  ["SecretNotFoundError", () => new errors.SecretNotFoundError("act-1")],
  ["ActivationRejectedError", () => new errors.ActivationRejectedError("no")],
  ["ConfigError", () => new errors.ConfigError("bad")],
  ["NotAnEksPoolError", () => new errors.NotAnEksPoolError("plain")],
  ["ActivationNotFoundError", () => new errors.ActivationNotFoundError("act-1")],
  ["NothingToRevokeError", () => new errors.NothingToRevokeError("default")],
];

describe("domain errors", () => {
  it.each(samples)("%s carries its own name and a code", (name, make) => {
    const error = make();
    expect(error.name).toBe(name);
    expect(String(error)).toMatch(new RegExp(`^${name}: `));
    expect(error.code).toMatch(/^[A-Z][A-Za-z]+$/);
  });

  it("covers every exported error class", () => {
    const exported = Object.entries(errors)
      .filter(([, value]) => typeof value === "function" && value.prototype instanceof Error)
      .filter(([name]) => !["BrokerError", "RetryLaterError"].includes(name))
      .map(([name]) => name);
    expect(exported.sort()).toEqual(samples.map(([name]) => name).sort());
  });

  // Bundles (the Lambda's, the CLI's) are minified: a name taken from the class would become a
  // single letter in logs. Build the module as the bundles do and look at the names there.
  it("keeps its names in a minified bundle", async () => {
    const result = await build({
      entryPoints: ["src/core/errors.ts"],
      bundle: true,
      minify: true,
      format: "esm",
      write: false,
      logLevel: "silent",
    });
    const source = result.outputFiles[0]!.text;
    const bundled = (await import(
      `data:text/javascript;base64,${Buffer.from(source).toString("base64")}`
    )) as Record<string, new (...args: unknown[]) => Error>;
    const minified = Object.values(bundled).find(
      (value) => new value("default", 1).message === new errors.ThrottledError("default", 1).message,
    );
    expect(minified).toBeDefined();
    expect(new minified!("default", 1).name).toBe("ThrottledError");
  });

  it("lets only retry-later errors decide their exposure themselves", () => {
    for (const [, make] of samples) {
      const error = make();
      expect(error.expose).toBe(error instanceof errors.RetryLaterError ? true : undefined);
    }
  });
});
