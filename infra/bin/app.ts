import { App } from "aws-cdk-lib";
import { ConfigError } from "../../src/core/errors";
import { buildBrokerApp } from "../broker-app";

// Environment-agnostic stacks: synth needs no credentials and performs no lookups; `cdk deploy`
// targets the account and region of the credentials it runs with.
const app = new App();
try {
  buildBrokerApp(app);
  app.synth();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  // A wrong setting is the operator's to fix: one line naming it, not a stack trace.
  // exit(), not exitCode: under the CDK CLI the App would synthesize the half-built tree at exit.
  process.stderr.write(`cdk synth: ${error.message}\n`);
  process.exit(1);
}
