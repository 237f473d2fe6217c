import { defineConfig } from "vitest/config";
import base from "./vitest.config";

/**
 * The suites Stryker runs against each mutant of src/core and src/aws: the unit, property,
 * contract and AWS-adapter tests. They need nothing but this process (the emulator and dynalite
 * run in it), so a mutant's verdict takes seconds. The HTTP, integration, infrastructure, script
 * and CLI suites stay out: they exercise the same code more slowly, or none of it.
 */
// The base config's tiers (projects) are left out: this is one flat run of the suites below.
const { projects: _tiers, ...shared } = base.test ?? {};

export default defineConfig({
  test: {
    ...shared,
    include: ["test/core/**/*.test.ts", "test/contract/**/*.test.ts", "test/aws/**/*.test.ts"],
  },
});
