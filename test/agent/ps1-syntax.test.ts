/**
 * PowerShell cannot run here, but install.ps1 must at least parse: tree-sitter's PowerShell
 * grammar (its WebAssembly build, so no native module is needed) reads it, and any ERROR or
 * MISSING node fails the test. A broken copy proves the check can fail.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { beforeAll, describe, expect, it } from "vitest";
import { Language, Parser, type Node } from "web-tree-sitter";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const grammar = require.resolve("tree-sitter-powershell/tree-sitter-powershell.wasm");

let parser: Parser;

beforeAll(async () => {
  await Parser.init();
  parser = new Parser();
  parser.setLanguage(await Language.load(grammar));
});

/** "ERROR at 12:3: …" for every node the parser could not fit into the grammar. */
function syntaxErrors(source: string): string[] {
  const tree = parser.parse(source);
  if (!tree) throw new Error("tree-sitter returned no tree");
  const errors: string[] = [];
  const visit = (node: Node): void => {
    if (node.type === "ERROR" || node.isMissing) {
      const where = `${node.startPosition.row + 1}:${node.startPosition.column + 1}`;
      errors.push(
        `${node.isMissing ? `MISSING ${node.type}` : "ERROR"} at ${where}: ${node.text.slice(0, 60)}`,
      );
    }
    for (const child of node.children) if (child) visit(child);
  };
  visit(tree.rootNode);
  tree.delete();
  return errors;
}

describe("install.ps1 syntax (tree-sitter-powershell)", () => {
  const ps1 = readFileSync(fileURLToPath(new URL("../../agent/install.ps1", import.meta.url)), "utf8");

  it("parses without a syntax error", () => {
    expect(syntaxErrors(ps1)).toEqual([]);
  });

  const breakages: [string, string, string][] = [
    ["a function without its opening brace", "function Get-RegisteredId {", "function Get-RegisteredId "],
    ["an unclosed parenthesis", "if ($MaxWait -lt 0)", "if ($MaxWait -lt 0"],
    ["an operator without its operand", "$total += $n }", "$total += }"],
    [
      "a catch without its try",
      "try { $response = $request.GetResponse() } catch {",
      "$response = $request.GetResponse() } catch {",
    ],
    [
      "a string that never ends",
      'Write-Log "agent $($Matches[1]) at $AgentExe"',
      'Write-Log "agent $($Matches[1]) at $AgentExe',
    ],
  ];
  it.each(breakages)("finds %s in a broken copy", (_name, from, to) => {
    expect(ps1).toContain(from);
    expect(syntaxErrors(ps1.replace(from, to)).length).toBeGreaterThan(0);
  });
});
