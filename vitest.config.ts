import { defineConfig } from "vitest/config";

/**
 * Three tiers (`npm run test:unit`, `test:integration`, `test:e2e`); `npm test` runs all three.
 * unit: pure code on in-memory fakes, seconds in all. e2e: whole programs as a user runs them
 * (install scripts under bats, the CLI bundle, `npm start`). integration: everything else — the
 * adapters, the emulator, the HTTP stack and the CDK app — so a new test file is never left out.
 */
const UNIT = [
  "test/core/**/*.test.ts",
  "test/docs/**/*.test.ts",
  "test/settings.test.ts",
  "test/http/handler.test.ts",
  "test/http/install-scripts.test.ts",
  "test/http/nodeconfig.test.ts",
  "test/http/status.test.ts",
  "test/http/script-url.test.ts",
  "test/agent/ps1-parity.test.ts",
  "test/support/**/*.test.ts",
];
const E2E = ["test/agent/**/*.test.ts", "test/cli/**/*.test.ts", "test/local/**/*.test.ts"];

export default defineConfig({
  test: {
    // Integration suites start their own emulator and broker on ephemeral ports,
    // so files can run in parallel; each file keeps its own state.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default"],
    // What a test prints is shown only when it fails: a green run is the summary alone.
    silent: "passed-only",
    projects: [
      { extends: true, test: { name: "unit", include: UNIT } },
      {
        extends: true,
        test: { name: "integration", include: ["test/**/*.test.ts"], exclude: [...UNIT, ...E2E] },
      },
      { extends: true, test: { name: "e2e", include: E2E, exclude: UNIT } },
    ],
  },
});
