// Mutation testing of src/core and src/aws: `npm run test:mutation`.
// See docs/testing.md, "Mutation testing", for the gate and the survivors it accepts.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutation.config.ts" },
  plugins: ["@stryker-mutator/vitest-runner", "@stryker-mutator/typescript-checker"],
  checkers: ["typescript"],
  tsconfigFile: "tsconfig.mutation.json",
  // The gate: all of src/core and src/aws (about 40 minutes on 2 cores; docs/testing.md).
  mutate: ["src/core/**/*.ts", "src/aws/**/*.ts"],
  reporters: ["clear-text", "progress", "json", "html"],
  thresholds: { high: 95, low: 90, break: 90 },
  incremental: true,
  incrementalFile: "reports/stryker-incremental.json",
  concurrency: 2,
  timeoutMS: 20_000,
  cleanTempDir: "always",
};
