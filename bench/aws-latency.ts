/**
 * `--aws-latency <profile>`: latency per AWS operation, added by the emulated AWS (DynamoDB, SSM:
 * emulator latency faults) and by the Lambda shape's Invoke API stand-in (bench/lambda-shape.ts).
 * A fixed delay per call, no jitter: the point is to give each call the weight it has in a Region,
 * so an algorithm that saves calls shows it in milliseconds too, not to model tail latency.
 *
 * AWS publishes no per-operation latency for SSM or for the Lambda Invoke API; what it documents
 * is DynamoDB's "single-digit milliseconds" for item operations. Every figure without a source of
 * its own below is an ESTIMATE for a caller in the same Region (a Lambda function or an EC2
 * host), chosen on the slow side of what SDK users commonly report; replace it with a measured
 * figure when one is at hand (one line per operation).
 */

export interface LatencyFigure {
  readonly ms: number;
  /** Where the figure comes from; "estimate: …" when no source gives it. */
  readonly source: string;
}

export interface LatencyProfile {
  readonly description: string;
  /** `service:Operation`, as the emulator counts calls ("dynamodb:UpdateItem", "lambda:Invoke"). */
  readonly operations: Readonly<Record<string, LatencyFigure>>;
}

const DYNAMODB_DOC =
  "AWS Knowledge Center, 'How can I troubleshoot high latency on an Amazon DynamoDB table?' " +
  "(https://repost.aws/knowledge-center/dynamodb-high-latency): for GetItem and PutItem 'an " +
  "average latency is in single-digit milliseconds' (service side, SuccessfulRequestLatency)";

const dynamodbRead: LatencyFigure = {
  ms: 5,
  source: `${DYNAMODB_DOC}; 5 ms is an estimate end to end, client and network included`,
};
const dynamodbWrite: LatencyFigure = {
  ms: 8,
  source:
    `${DYNAMODB_DOC}; 8 ms is an estimate end to end: a write is acknowledged by two of three ` +
    "replicas, so it is slower than an eventually consistent read",
};

export const AWS_LATENCY_PROFILES: Readonly<Record<string, LatencyProfile>> = {
  region: {
    description: "a caller in the same Region as DynamoDB, SSM and Lambda",
    operations: {
      "dynamodb:GetItem": dynamodbRead,
      "dynamodb:Query": dynamodbRead,
      "dynamodb:Scan": { ms: 10, source: "estimate: one page of a small table" },
      "dynamodb:PutItem": dynamodbWrite,
      "dynamodb:UpdateItem": dynamodbWrite,
      "dynamodb:DeleteItem": dynamodbWrite,
      "dynamodb:TransactWriteItems": {
        ms: 15,
        source: "estimate: a transaction is two phases (prepare, commit), about two writes",
      },
      "ssm:CreateActivation": {
        ms: 100,
        source:
          "estimate: a control-plane call (it creates a registration resource bound to an IAM role); " +
          "no published figure",
      },
      "ssm:DescribeActivations": { ms: 50, source: "estimate: a control-plane read; no published figure" },
      "ssm:DeleteActivation": { ms: 50, source: "estimate: a control-plane write; no published figure" },
      "ssm:AddTagsToResource": { ms: 50, source: "estimate: a control-plane write; no published figure" },
      "ssm:PutParameter": {
        ms: 40,
        source: "estimate: a SecureString write, KMS encryption included; no published figure",
      },
      "ssm:GetParameter": {
        ms: 20,
        source: "estimate: a SecureString read with decryption (a KMS call inside); no published figure",
      },
      "ssm:GetParameters": {
        ms: 25,
        source: "estimate: GetParameter's cost plus a little per extra name; no published figure",
      },
      "ssm:DeleteParameter": { ms: 30, source: "estimate: a Parameter Store write; no published figure" },
      "lambda:Invoke": {
        ms: 30,
        source:
          "estimate: InvocationType Event answers 202 once the event is queued " +
          "(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html); no published latency",
      },
    },
  },
};

/** The emulator faults that give the profile's DynamoDB and SSM figures. */
export function emulatorLatencyFaults(profile: LatencyProfile) {
  return Object.entries(profile.operations).flatMap(([key, figure]) => {
    const [service, operation] = key.split(":");
    return service === "dynamodb" || service === "ssm"
      ? [{ service, operation, kind: "latency" as const, latencyMs: figure.ms }]
      : [];
  });
}
