import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { EXIT_ON_UNCAUGHT_ERROR } from "../../src/http/node-server";

/** Runs the fixture to its end (it would run forever if the crash were swallowed). */
function runFixture(mode: "throw" | "reject"): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "test/http/fixtures/crash-after-listen.ts", mode],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout });
    });
  });
}

describe("crash-only: an error that escapes every handler ends the process", () => {
  it.each([
    ["throw", "uncaught error"],
    ["reject", "unhandled rejection"],
  ] as const)(
    "%s: logs the error's name and exits non-zero, though a server is listening",
    async (mode, what) => {
      const { code, stdout } = await runFixture(mode);
      expect(EXIT_ON_UNCAUGHT_ERROR).not.toBe(0);
      expect(code).toBe(EXIT_ON_UNCAUGHT_ERROR);
      expect(stdout).toContain("listening");
      expect(stdout).toContain(
        `ERROR ${what}; the broker exits so that its supervisor restarts it error=RangeError`,
      );
      expect(stdout).not.toContain("c0de");
    },
  );
});
