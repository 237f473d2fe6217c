import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { App } from "aws-cdk-lib";
import { zipSync } from "fflate";
import { FUNCTION_ZIP, buildReleaseApp } from "../release";

/**
 * `npm run package`: the CloudFormation release in dist/cloudformation/ — three self-contained
 * templates and the function code as broker.zip, which the Api template names as `./broker.zip`
 * for `aws cloudformation package` to upload. Needs no AWS credentials and no CDK bootstrap.
 */
export function packageRelease(target = join("dist", "cloudformation")): { files: string[]; app: App } {
  const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
  const context = JSON.parse(readFileSync(join(repoRoot, "cdk.json"), "utf8")).context;
  const outdir = mkdtempSync(join(tmpdir(), "broker-release-"));
  try {
    // No analytics resource: the templates are handed to people, not deployed by the CDK CLI.
    const app = new App({ outdir, context, analyticsReporting: false });
    const release = buildReleaseApp(app);
    const assembly = app.synth();

    rmSync(target, { recursive: true, force: true });
    mkdirSync(target, { recursive: true });
    const written: string[] = [];
    for (const stack of [release.endpoint, release.key, release.api]) {
      const file = `${stack.stackName}.template.json`;
      writeFileSync(join(target, file), readFileSync(join(assembly.directory, stack.templateFile)));
      written.push(file);
    }
    const assets = release.functionAssets();
    if (assets.length !== 1) throw new Error(`expected one function bundle, found ${assets.length}`);
    const bundleDir = join(assembly.directory, assets[0]!);
    const files = Object.fromEntries(
      listFiles(bundleDir).map((f) => [relative(bundleDir, f), readFileSync(f)] as const),
    );
    // Fixed timestamps: the same sources give the same zip, so re-packaging changes no S3 key.
    writeFileSync(join(target, FUNCTION_ZIP), zipSync(files, { level: 9, mtime: new Date("2020-01-01") }));
    written.push(FUNCTION_ZIP);
    return { files: written, app };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const written = packageRelease().files;
  console.log(`dist/cloudformation/: ${written.join(", ")} (steps in docs/deploy.md)`);
}
