// Mutation testing of the vend algorithm and its AWS adapters: `npm run test:mutation`.
// See docs/testing.md, "Mutation testing", for the gate and the survivors it accepts.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutation.config.ts" },
  plugins: ["@stryker-mutator/vitest-runner", "@stryker-mutator/typescript-checker"],
  checkers: ["typescript"],
  tsconfigFile: "tsconfig.mutation.json",
  // The gate: the vend path (I1-I5) and the code every adapter shares. The whole of src/core and
  // src/aws takes hours on a 2-core machine; run it with --mutate (docs/testing.md).
  mutate: [
    "src/core/vend.ts",
    "src/core/vend-policy.ts",
    "src/core/pool-config.ts",
    "src/core/errors.ts",
    "src/aws/sdk-errors.ts",
    "src/aws/naming.ts",
  ],
  reporters: ["clear-text", "progress", "json", "html"],
  thresholds: { high: 95, low: 90, break: 90 },
  incremental: true,
  incrementalFile: "reports/stryker-incremental.json",
  concurrency: 2,
  timeoutMS: 20_000,
  cleanTempDir: "always",
};
