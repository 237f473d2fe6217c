import { App } from "aws-cdk-lib";
import { buildBrokerApp } from "../broker-app";

// Environment-agnostic stacks: synth needs no credentials and performs no lookups; `cdk deploy`
// targets the account and region of the credentials it runs with.
const app = new App();
buildBrokerApp(app);
app.synth();
