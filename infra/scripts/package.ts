import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { App } from "aws-cdk-lib";
import { build, type Plugin } from "esbuild";
import { AGENT_SCRIPTS_BUNDLING } from "../../scripts/bundling";
import { buildReleaseApp, type InlineCode } from "../release";

/**
 * `npm run package`: the CloudFormation release in dist/cloudformation/ — three self-contained
 * templates, the Api one carrying the broker's and the janitor's code inline (`Code.ZipFile`), so
 * uploading the templates in the console is the whole deployment. Needs no AWS credentials, no
 * bucket and no CDK bootstrap.
 */

/**
 * The console's limit: a template uploaded there goes through S3, and CloudFormation reads at most
 * 1 MB from S3 ("Template body size in an Amazon S3 object", CloudFormation quotas). Counted as
 * 1,000,000 bytes so that either reading of "MB" holds.
 */
export const MAX_TEMPLATE_BYTES = 1_000_000;

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
export const BROKER_ENTRY = join(repoRoot, "src", "entry", "lambda.ts");
export const JANITOR_ENTRY = join(repoRoot, "src", "entry", "janitor.ts");

/**
 * Cuts that keep both functions inside one template without changing what they do:
 * - zod's `z.locales` namespace holds every language's error messages (264 KB minified); nothing
 *   here reads it, and zod installs English by importing `locales/en.js` directly, which stays.
 * - `yaml` builds only the EKS NodeConfig; declared free of side effects, it is dropped from the
 *   janitor, which imports the module that uses it but never calls it.
 */
const slimDependencies: Plugin = {
  name: "slim-dependencies",
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[/\\]zod[/\\]v4[/\\](classic|core)[/\\]/.test(args.importer)
        ? { path: "zod-locales-english-only", namespace: "slim" }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "slim" }, () => ({
      contents: 'export { default as en } from "zod/v4/locales/en.js";',
      resolveDir: repoRoot,
      loader: "js",
    }));
    b.onResolve({ filter: /^yaml$/ }, async (args) => {
      if (args.pluginData === "slim") return undefined;
      const resolved = await b.resolve(args.path, {
        kind: args.kind,
        resolveDir: args.resolveDir,
        importer: args.importer,
        pluginData: "slim",
      });
      return { ...resolved, sideEffects: false };
    });
  },
};

/**
 * One function's code as CloudFormation lays out `ZipFile`: a single CommonJS `index.js`
 * (handler `index.handler`). The SDK clients come from the `nodejs24.x` runtime, which ships the
 * AWS SDK for JavaScript v3: bundled, the broker alone would not fit in 1 MB (docs/deploy.md, "The
 * function code"). Everything else is bundled, the utilities too, so only client packages — the
 * runtime's — are resolved outside the file. No source map: it would double the size.
 */
export async function inlineCode(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    write: false,
    outfile: "index.js",
    bundle: true,
    platform: "node",
    target: "node24",
    format: "cjs",
    minify: true,
    mainFields: ["module", "main"],
    external: ["@aws-sdk/client-*"],
    plugins: [slimDependencies],
    ...AGENT_SCRIPTS_BUNDLING,
    logLevel: "warning",
  });
  return result.outputFiles[0]!.text;
}

export async function packageRelease(
  target = join("dist", "cloudformation"),
): Promise<{ files: string[]; sizes: Record<string, number>; app: App; code: InlineCode }> {
  const context = JSON.parse(readFileSync(join(repoRoot, "cdk.json"), "utf8")).context;
  const code: InlineCode = {
    broker: await inlineCode(BROKER_ENTRY),
    janitor: await inlineCode(JANITOR_ENTRY),
  };
  const outdir = mkdtempSync(join(tmpdir(), "broker-release-"));
  try {
    // No analytics resource: the templates are handed to people, not deployed by the CDK CLI.
    // No bundling: the functions' code is the inline code above, not a CDK asset.
    const app = new App({
      outdir,
      context: { ...context, "aws:cdk:bundling-stacks": [] },
      analyticsReporting: false,
    });
    const release = buildReleaseApp(app, code);
    const assembly = app.synth();

    rmSync(target, { recursive: true, force: true });
    mkdirSync(target, { recursive: true });
    const files: string[] = [];
    const sizes: Record<string, number> = {};
    for (const stack of [release.endpoint, release.key, release.api]) {
      const file = `${stack.stackName}.template.json`;
      const body = readFileSync(join(assembly.directory, stack.templateFile));
      if (body.length > MAX_TEMPLATE_BYTES) {
        throw new Error(
          `${file} is ${body.length} bytes; the CloudFormation console accepts ${MAX_TEMPLATE_BYTES}`,
        );
      }
      writeFileSync(join(target, file), body);
      files.push(file);
      sizes[file] = body.length;
    }
    return { files, sizes, app, code };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { sizes } = await packageRelease();
  const list = Object.entries(sizes).map(([f, n]) => `${f} (${Math.round(n / 1024)} KiB)`);
  console.log(`dist/cloudformation/: ${list.join(", ")} (steps in docs/deploy.md)`);
}
