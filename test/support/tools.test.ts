import { afterEach, describe, expect, it, vi } from "vitest";
import { missingTools, type Tool } from "./tools";

const present: Tool = { name: "bash", install: "apt-get install -y bash", present: true };
const absent: Tool = { name: "frob", install: "apt-get install -y frob", present: false };

describe("missingTools", () => {
  afterEach(() => vi.unstubAllEnvs());

  it("is empty when every tool is there", () => {
    vi.stubEnv("CI", "true");
    expect(missingTools(present)).toBe("");
  });

  it("gives a developer the reason and the install line, for the skipped test's title", () => {
    vi.stubEnv("CI", "");
    expect(missingTools(present, absent)).toBe(" — skipped: install frob (apt-get install -y frob)");
  });

  it("fails under CI=true, where every tool is installed", () => {
    vi.stubEnv("CI", "true");
    expect(() => missingTools(absent)).toThrow("CI=true, but frob is missing: apt-get install -y frob");
  });
});
