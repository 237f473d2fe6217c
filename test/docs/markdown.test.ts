import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { brokenLinks, headingSlugs, linksOf, overlongLines } from "./markdown";

/**
 * The documentation a reader opens: README.md, every page under docs/, emulator/README.md and the
 * benchmark's lab notes (bench/results/README.md).
 * Every relative link must open a file (and its #anchor a heading), no prose line is wider than
 * 100 characters, the README stays a front door, and nothing points outside the repository.
 */

const ROOT = resolve(import.meta.dirname, "..", "..");

function markdownUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return markdownUnder(path);
    return name.endsWith(".md") ? [path] : [];
  });
}

const PAGES = [
  join(ROOT, "README.md"),
  join(ROOT, "emulator", "README.md"),
  join(ROOT, "bench", "results", "README.md"),
  ...markdownUnder(join(ROOT, "docs")),
];
const read = (path: string) => readFileSync(path, "utf8");

describe("documentation", () => {
  it("finds the pages it checks", () => {
    expect(PAGES.map((p) => relative(ROOT, p))).toEqual(
      expect.arrayContaining(["README.md", "emulator/README.md", "docs/architecture.md"]),
    );
  });

  for (const page of PAGES) {
    const name = relative(ROOT, page);

    it(`${name}: every relative link opens a file, every #anchor a heading`, () => {
      const broken = brokenLinks(read(page), dirname(page), (target) => {
        if (!existsSync(target)) return undefined;
        return target.endsWith(".md") ? headingSlugs(read(target)) : new Set<string>();
      });
      expect(broken).toEqual([]);
    });

    it(`${name}: no line wider than 100 characters outside tables and code`, () => {
      expect(overlongLines(read(page), 100)).toEqual([]);
    });

    it(`${name}: refers to nothing a reader of this repository cannot open`, () => {
      const text = read(page);
      expect(text).not.toMatch(/\.\.\/shared|shared\/fixtures|DESIGN\.md|\bissue\s*#?\d+/i);
    });
  }

  it("README.md is at most 150 lines", () => {
    expect(read(join(ROOT, "README.md")).trimEnd().split("\n").length).toBeLessThanOrEqual(150);
  });

  it("docs/performance.md is a page read in minutes: at most 150 lines (the runs are in bench/results/)", () => {
    expect(
      read(join(ROOT, "docs", "performance.md"))
        .trimEnd()
        .split("\n").length,
    ).toBeLessThanOrEqual(150);
  });
});

describe("the checks themselves", () => {
  const page = [
    "# Title",
    "## Deploying and cleanup",
    "See [a](other.md#missing), [b](#deploying-and-cleanup), [c](https://example.com/x)",
    "and [d](gone.md) and ![img](pic.png) and [e](#nope).",
    "```",
    "[not a link](nowhere.md)",
    "x".repeat(120),
    "```",
    `| ${"t".repeat(120)} |`,
    "y".repeat(101),
  ].join("\n");

  it("extracts links outside code only", () => {
    expect(linksOf(page).map((l) => l.target)).toEqual([
      "other.md#missing",
      "#deploying-and-cleanup",
      "https://example.com/x",
      "gone.md",
      "pic.png",
      "#nope",
    ]);
  });

  it("reports a missing file, a missing anchor in another page and in the same page", () => {
    const files: Record<string, Set<string>> = {
      "/d/other.md": new Set(["present"]),
      "/d/pic.png": new Set(),
    };
    expect(brokenLinks(page, "/d", (t) => files[t])).toEqual([
      "other.md#missing (no heading 'missing')",
      "gone.md (no such file)",
      "#nope (no heading 'nope')",
    ]);
  });

  it("slugs headings as GitHub does", () => {
    expect([
      ...headingSlugs("# Deploying and cleanup\n## `npm start`: the local run\n## Exit codes"),
    ]).toEqual(["deploying-and-cleanup", "npm-start-the-local-run", "exit-codes"]);
  });

  it("reports only prose lines over the limit", () => {
    expect(overlongLines(page, 100)).toEqual([`10: ${"y".repeat(101)}`]);
  });
});
