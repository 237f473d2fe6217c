import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Copies the synthesized CloudFormation templates from cdk.out/ to dist/cloudformation/ as build
 * artefacts, for operators who deploy through the console as the reference's users did.
 * Run after `cdk synth` (npm run synth:templates does both).
 */
const source = process.argv[2] ?? "cdk.out";
const target = process.argv[3] ?? join("dist", "cloudformation");

const templates = readdirSync(source).filter((f) => f.endsWith(".template.json"));
if (templates.length === 0) {
  console.error(`No *.template.json in ${source}: run \`npx cdk synth\` first.`);
  process.exit(1);
}
rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
for (const t of templates) copyFileSync(join(source, t), join(target, t));
writeFileSync(
  join(target, "README.txt"),
  [
    "SSM activation broker: CloudFormation templates synthesized by `npm run synth:templates`.",
    "",
    "Console upload: CloudFormation > Create stack > With new resources > Upload a template file.",
    "Create them in this order, with the settings that were in effect at synth time:",
    "  1. *-Endpoint.template.json  (skip if you reuse an endpoint)  - self-contained",
    "  2. *-Key.template.json       (skip if you reuse a key)        - self-contained",
    "  3. *-Api.template.json       - references the Lambda bundle in the CDK bootstrap bucket",
    "     and the outputs of 1 and 2 by export name: publish its assets first",
    "     (`npx cdk deploy` does both; see docs/deploy.md, 'Console upload').",
    "Stack names must match the file names (ActivationBroker-…) because stack 3 imports",
    "the exports of stacks 1 and 2 by those names.",
    "",
  ].join("\n"),
);
console.log(`Copied ${templates.length} templates to ${target}: ${templates.join(", ")}`);
