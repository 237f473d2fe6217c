/**
 * The facts a deployment must share across its two definitions — per role the IAM statements,
 * trust and managed policies; per function the environment and settings; the alarms; the log
 * groups' retention and key; the key, endpoint and API policies — read from the CDK app's
 * synthesized templates and from the Terraform module's state, into one shape compared exactly.
 *
 * Both sides name resources by role, not by id: `<table.arn>`, `<node-role.name>`, `<api.id>`,
 * `<deployment>`. On the CDK side Ref / GetAtt / ImportValue become those names; on the Terraform
 * side the actual values (ARNs, ids, names) do. Pseudo parameters take the Terraform side's
 * account and Region, so every other part of an ARN is compared as written.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Obj = { [key: string]: Json };

export interface Statement {
  readonly Sid?: string;
  readonly Effect: string;
  readonly Principal?: Json;
  readonly Action: string[];
  readonly Resource: string[];
  readonly Condition?: Json;
}

export interface DeploymentFacts {
  readonly roles: Record<string, { trust: Statement[]; managedPolicies: string[]; statements: Statement[] }>;
  readonly environments: Record<string, Record<string, Json>>;
  readonly functions: Record<string, Record<string, Json>>;
  readonly alarms: Record<string, Obj>;
  readonly logGroups: Record<string, { retentionInDays: number; kmsKey: string }>;
  readonly policies: Record<string, Statement[]>;
}

export interface CfnTemplate {
  readonly Resources: Record<string, { Type: string; Properties?: Obj }>;
  readonly Outputs?: Record<string, { Value: Json; Export?: { Name: string } }>;
}

const sorted = <T>(xs: T[]): T[] => [...xs].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
const asList = (v: Json | undefined): Json[] =>
  v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];

/** Object keys sorted, so deep equality ignores the order each tool writes them in. */
function canonical(v: Json): Json {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical(v[k]!)]),
    );
  }
  return v;
}

/** A policy statement with every list sorted and every single value made a list. */
function statement(s: Obj): Statement {
  const condition = s.Condition as Obj | undefined;
  const principal = s.Principal;
  return {
    ...(s.Sid !== undefined && { Sid: s.Sid as string }),
    Effect: s.Effect as string,
    ...(principal !== undefined && {
      Principal:
        typeof principal === "string"
          ? principal
          : Object.fromEntries(Object.entries(principal as Obj).map(([k, v]) => [k, sorted(asList(v))])),
    }),
    Action: sorted(asList(s.Action) as string[]),
    Resource: sorted(asList(s.Resource) as string[]),
    ...(condition !== undefined && {
      Condition: canonical(
        Object.fromEntries(
          Object.entries(condition).map(([op, keys]) => [
            op,
            Object.fromEntries(Object.entries(keys as Obj).map(([k, v]) => [k, sorted(asList(v))])),
          ]),
        ),
      ),
    }),
  };
}

const statements = (doc: Json | undefined): Statement[] =>
  sorted(asList((doc as Obj | undefined)?.Statement).map((s) => statement(s as Obj)));

// ---------------------------------------------------------------------------------------------
// The CDK side

/**
 * Reads the facts from the broker stack's template; `others` are the endpoint and key stacks,
 * whose exports the broker stack imports.
 */
export function cdkFacts(
  api: CfnTemplate,
  others: readonly CfnTemplate[],
  env: { account: string; region: string; stackName: string },
): DeploymentFacts {
  const pseudo: Record<string, string> = {
    "AWS::Partition": "aws",
    "AWS::Region": env.region,
    "AWS::AccountId": env.account,
    "AWS::URLSuffix": "amazonaws.com",
  };
  const R = api.Resources;
  const ofType = (type: string) => Object.entries(R).filter(([, r]) => r.Type === type);

  // Role names for the logical ids, found from what refers to them (not from the ids' spelling).
  const names = new Map<string, string>();
  const refId = (v: Json | undefined): string | undefined => {
    const o = v as Obj | undefined;
    if (!o) return undefined;
    if (typeof o.Ref === "string") return o.Ref;
    const att = o["Fn::GetAtt"] as string[] | undefined;
    return att?.[0];
  };
  for (const [id, fn] of ofType("AWS::Lambda::Function")) {
    const vars = (fn.Properties!.Environment as Obj).Variables as Obj;
    const who = vars.POWERTOOLS_SERVICE_NAME === "activation-broker" ? "broker" : "janitor";
    names.set(id, `${who}-function`);
    names.set(refId(fn.Properties!.Role)!, `${who}-role`);
    names.set(refId((fn.Properties!.LoggingConfig as Obj).LogGroup)!, `${who}-logs`);
    if (who === "broker") names.set(refId(vars.BROKER_DEFAULT_IAM_ROLE)!, "node-role");
  }
  for (const [, account] of ofType("AWS::ApiGateway::Account")) {
    names.set(refId(account.Properties!.CloudWatchRoleArn)!, "apigw-logs-role");
  }
  for (const [, stage] of ofType("AWS::ApiGateway::Stage")) {
    const dest = JSON.stringify((stage.Properties!.AccessLogSetting as Obj).DestinationArn);
    for (const [id] of ofType("AWS::Logs::LogGroup"))
      if (dest.includes(`"${id}"`)) names.set(id, "access-logs");
  }
  const single: Record<string, string> = {
    "AWS::DynamoDB::Table": "table",
    "AWS::ApiGateway::RestApi": "api",
    "AWS::KMS::Key": "logs-key",
    "AWS::SNS::Topic": "topic",
  };
  for (const [type, name] of Object.entries(single)) {
    const found = ofType(type);
    if (found.length !== 1)
      throw new Error(`expected one ${type} in the broker stack, found ${found.length}`);
    names.set(found[0]![0], name);
  }
  const otherNames: Record<string, string> = {
    "AWS::KMS::Key": "codes-key",
    "AWS::EC2::VPCEndpoint": "vpce",
  };
  const apiName = (ofType("AWS::ApiGateway::RestApi")[0]![1].Properties!.Name as string) ?? "";

  // What `Ref` returns for each type (CloudFormation resource reference, "Return values").
  const refAttr: Record<string, string> = {
    "AWS::IAM::Role": "name",
    "AWS::DynamoDB::Table": "name",
    "AWS::Logs::LogGroup": "name",
    "AWS::Lambda::Function": "name",
    "AWS::ApiGateway::RestApi": "id",
    "AWS::KMS::Key": "id",
    "AWS::EC2::VPCEndpoint": "id",
    "AWS::SNS::Topic": "arn",
  };

  const render = (v: Json, template: CfnTemplate, nameOf: (id: string) => string): Json => {
    if (Array.isArray(v)) return v.map((x) => render(x, template, nameOf));
    if (v === null || typeof v !== "object") return v;
    const keys = Object.keys(v);
    if (keys.length === 1) {
      const [k] = keys as [string];
      const arg = v[k]!;
      if (k === "Ref") {
        const id = arg as string;
        if (pseudo[id] !== undefined) return pseudo[id]!;
        const type = template.Resources[id]!.Type;
        return `<${nameOf(id)}.${refAttr[type] ?? "ref"}>`;
      }
      if (k === "Fn::GetAtt") {
        const [id, attr] = arg as [string, string];
        const type = template.Resources[id]!.Type;
        // CloudFormation's log group Arn ends in ":*"; the provider's does not.
        return `<${nameOf(id)}.${attr.toLowerCase()}>${type === "AWS::Logs::LogGroup" ? ":*" : ""}`;
      }
      if (k === "Fn::Join") {
        // `<stack name>:<stack uuid>`, the deployment tag's value (defaultDeploymentId).
        if (JSON.stringify(arg).includes('"AWS::StackId"')) return "<deployment>";
        const [sep, parts] = arg as [string, Json[]];
        return parts.map((p) => render(p, template, nameOf)).join(sep);
      }
      if (k === "Fn::ImportValue") {
        for (const other of others) {
          for (const out of Object.values(other.Outputs ?? {})) {
            if (out.Export?.Name === arg) {
              return render(out.Value, other, (id) => otherNames[other.Resources[id]!.Type] ?? id);
            }
          }
        }
        throw new Error(`no stack exports ${String(arg)}`);
      }
    }
    return Object.fromEntries(Object.entries(v).map(([key, x]) => [key, render(x, template, nameOf)]));
  };
  const nameOf = (id: string) => {
    const n = names.get(id);
    if (!n) throw new Error(`no role name for ${id} (${R[id]?.Type}): the parity test needs one`);
    return n;
  };
  // A role's ARN the CDK app builds from the role's name is that role's ARN.
  const roleArn = new RegExp(`arn:aws:iam::${env.account}:role/<([a-z-]+-role)\\.name>`, "g");
  const rr = (v: Json | undefined): Json =>
    JSON.parse(JSON.stringify(render(v ?? null, api, nameOf)).replace(roleArn, "<$1.arn>")) as Json;
  const literal = (v: Json): Json => (v === apiName ? "<api.name>" : v);

  const roles: DeploymentFacts["roles"] = {};
  for (const [id, role] of ofType("AWS::IAM::Role")) {
    roles[nameOf(id)] = {
      trust: statements(rr(role.Properties!.AssumeRolePolicyDocument)),
      managedPolicies: sorted(asList(rr(role.Properties!.ManagedPolicyArns)) as string[]),
      statements: sorted(
        ofType("AWS::IAM::Policy")
          .filter(([, p]) => asList(p.Properties!.Roles).some((ref) => refId(ref) === id))
          .flatMap(([, p]) => statements(rr(p.Properties!.PolicyDocument))),
      ),
    };
  }

  const environments: DeploymentFacts["environments"] = {};
  const functions: DeploymentFacts["functions"] = {};
  for (const [id, fn] of ofType("AWS::Lambda::Function")) {
    const p = fn.Properties!;
    environments[nameOf(id)] = rr((p.Environment as Obj).Variables) as Record<string, Json>;
    functions[nameOf(id)] = {
      runtime: p.Runtime!,
      architectures: p.Architectures!,
      memorySize: p.MemorySize!,
      timeout: p.Timeout!,
      handler: p.Handler!,
      reservedConcurrency: p.ReservedConcurrentExecutions ?? null,
      tracing: (p.TracingConfig as Obj | undefined)?.Mode ?? "PassThrough",
      logGroup: rr((p.LoggingConfig as Obj).LogGroup),
      role: rr(p.Role),
    };
  }

  const alarms: DeploymentFacts["alarms"] = {};
  for (const [, alarm] of ofType("AWS::CloudWatch::Alarm")) {
    const p = rr(alarm.Properties!) as Obj;
    const dims = (d: Json | undefined) =>
      Object.fromEntries(asList(d).map((x) => [(x as Obj).Name as string, literal((x as Obj).Value!)]));
    const name = (p.AlarmName as string).replace(`${env.stackName}-`, "");
    alarms[name] = alarmShape({
      comparison: p.ComparisonOperator!,
      threshold: p.Threshold!,
      evaluationPeriods: p.EvaluationPeriods!,
      datapointsToAlarm: p.DatapointsToAlarm!,
      treatMissingData: p.TreatMissingData!,
      actionsEnabled: p.ActionsEnabled!,
      actions: asList(p.AlarmActions),
      description: p.AlarmDescription!,
      metric:
        p.MetricName === undefined
          ? null
          : {
              namespace: p.Namespace!,
              name: p.MetricName,
              dimensions: dims(p.Dimensions),
              period: p.Period!,
              stat: p.Statistic!,
            },
      queries: asList(p.Metrics).map((q) => {
        const m = q as Obj;
        const stat = m.MetricStat as Obj | undefined;
        const metric = stat?.Metric as Obj | undefined;
        return {
          id: m.Id!,
          label: m.Label ?? null,
          expression: m.Expression ?? null,
          returnData: m.ReturnData ?? true,
          metric: metric
            ? {
                namespace: metric.Namespace!,
                name: metric.MetricName!,
                dimensions: dims(metric.Dimensions),
                period: stat!.Period!,
                stat: stat!.Stat!,
              }
            : null,
        };
      }),
    });
  }

  const logGroups: DeploymentFacts["logGroups"] = {};
  for (const [id, group] of ofType("AWS::Logs::LogGroup")) {
    logGroups[nameOf(id)] = {
      retentionInDays: group.Properties!.RetentionInDays as number,
      kmsKey: rr(group.Properties!.KmsKeyId) as string,
    };
  }

  const policies: DeploymentFacts["policies"] = {};
  policies["logs-key"] = statements(rr(ofType("AWS::KMS::Key")[0]![1].Properties!.KeyPolicy));
  policies["topic"] = statements(rr(ofType("AWS::SNS::TopicPolicy")[0]![1].Properties!.PolicyDocument));
  // API Gateway expands the shorthand `execute-api:/*` to this API's execution ARN.
  policies["api"] = statements(
    JSON.parse(
      JSON.stringify(rr(ofType("AWS::ApiGateway::RestApi")[0]![1].Properties!.Policy)).replaceAll(
        '"execute-api:/*"',
        `"arn:aws:execute-api:${env.region}:${env.account}:<api.id>/*"`,
      ),
    ),
  );
  for (const other of others) {
    const localName = (id: string) => otherNames[other.Resources[id]!.Type] ?? id;
    for (const res of Object.values(other.Resources)) {
      if (res.Type === "AWS::KMS::Key") {
        policies["codes-key"] = statements(render(res.Properties!.KeyPolicy!, other, localName));
      }
      if (res.Type === "AWS::EC2::VPCEndpoint") {
        policies["vpce"] = statements(render(res.Properties!.PolicyDocument!, other, localName));
      }
    }
  }
  return { roles, environments, functions, alarms, logGroups, policies };
}

/** One alarm in the compared shape: a single metric, or queries sorted by id. */
function alarmShape(a: Obj): Obj {
  return canonical({
    ...a,
    actions: sorted(a.actions as Json[]),
    queries: sorted(a.queries as Json[]),
  }) as Obj;
}

// ---------------------------------------------------------------------------------------------
// The Terraform side

interface StateResource {
  readonly address: string;
  readonly mode: string;
  readonly type: string;
  readonly name: string;
  readonly values: Obj;
}

/** Every managed resource of `terraform show -json` (state), child modules included. */
export function stateResources(state: Obj): StateResource[] {
  const walk = (m: Obj | undefined): StateResource[] =>
    m
      ? [
          ...((m.resources as unknown as StateResource[] | undefined) ?? []),
          ...asList(m.child_modules).flatMap((c) => walk(c as Obj)),
        ]
      : [];
  return walk((state.values as Obj | undefined)?.root_module as Obj | undefined).filter(
    (r) => r.mode === "managed",
  );
}

/** The module's resources by the role names the CDK side uses. */
const TF_NAMES: Record<string, string> = {
  "aws_dynamodb_table.pools": "table",
  "aws_cloudwatch_log_group.broker": "broker-logs",
  "aws_cloudwatch_log_group.janitor": "janitor-logs",
  "aws_cloudwatch_log_group.access": "access-logs",
  "aws_lambda_function.broker": "broker-function",
  "aws_lambda_function.janitor": "janitor-function",
  "aws_kms_key.codes": "codes-key",
  "aws_kms_key.logs": "logs-key",
  "aws_iam_role.broker": "broker-role",
  "aws_iam_role.janitor": "janitor-role",
  "aws_iam_role.node": "node-role",
  "aws_iam_role.api_gateway_logs": "apigw-logs-role",
  "aws_api_gateway_rest_api.broker": "api",
  "aws_vpc_endpoint.api": "vpce",
  "aws_sns_topic.alarms": "topic",
};

/**
 * Reads the facts from the applied state (`terraform show -json`), every value resolved. `plan`
 * (`terraform show -json` of the plan) supplies what moto 5.2 does not return on reads: a
 * function's LoggingConfig, which the plan already knows in full (the log group's name).
 */
export function terraformFacts(state: Obj, plan: Obj, env: { name: string }): DeploymentFacts {
  const all = stateResources(state).filter((r) => r.address.startsWith("module.broker."));
  const planned = new Map(
    stateResources({ values: plan.planned_values! } as Obj).map((r) => [r.address, r.values] as const),
  );
  const one = (type: string, name: string) => {
    const found = all.filter((r) => r.type === type && r.name === name);
    if (found.length !== 1)
      throw new Error(`expected one ${type}.${name} in the state, found ${found.length}`);
    return found[0]!.values;
  };
  const brokerFn = one("aws_lambda_function", "broker");
  const deployment = ((brokerFn.environment as Obj[])[0]!.variables as Obj).BROKER_DEPLOYMENT as string;

  // Whole strings that are a resource's name or id; substrings that are an ARN or a generated id.
  const whole = new Map<string, string>();
  const inner: [string, string][] = [[deployment, "<deployment>"]];
  for (const r of all) {
    const role = TF_NAMES[`${r.type}.${r.name}`];
    if (!role) continue;
    const v = r.values;
    if (typeof v.arn === "string") inner.push([v.arn, `<${role}.arn>`]);
    const name = (v.function_name ?? v.name) as string | undefined;
    if (typeof name === "string" && r.type !== "aws_kms_key") whole.set(name, `<${role}.name>`);
    if (r.type === "aws_kms_key") inner.push([v.key_id as string, `<${role}.id>`]);
    if (r.type === "aws_vpc_endpoint" || r.type === "aws_api_gateway_rest_api") {
      inner.push([v.id as string, `<${role}.id>`]);
    }
  }
  inner.sort((a, b) => b[0].length - a[0].length);
  const swap = (s: string): string => {
    if (whole.has(s)) return whole.get(s)!;
    let out = s;
    for (const [value, placeholder] of inner) {
      // Only where a name ends: a log group's ARN is a prefix of a longer group's ARN.
      out = out.replace(new RegExp(`${escapeRegExp(value)}(?![A-Za-z0-9_-])`, "g"), placeholder);
    }
    return out;
  };
  const sub = (v: Json): Json =>
    Array.isArray(v)
      ? v.map(sub)
      : v !== null && typeof v === "object"
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sub(x)]))
        : typeof v === "string"
          ? swap(v)
          : v;
  const doc = (json: Json | undefined): Json =>
    typeof json === "string" && json !== "" ? sub(JSON.parse(json)) : null;

  const roles: DeploymentFacts["roles"] = {};
  for (const r of all.filter((x) => x.type === "aws_iam_role")) {
    const roleName = r.values.name as string;
    roles[TF_NAMES[`aws_iam_role.${r.name}`]!] = {
      trust: statements(doc(r.values.assume_role_policy)),
      managedPolicies: sorted(
        all
          .filter((a) => a.type === "aws_iam_role_policy_attachment" && a.values.role === roleName)
          .map((a) => swap(a.values.policy_arn as string)),
      ),
      statements: sorted(
        all
          .filter((p) => p.type === "aws_iam_role_policy" && p.values.role === roleName)
          .flatMap((p) => statements(doc(p.values.policy))),
      ),
    };
  }

  const environments: DeploymentFacts["environments"] = {};
  const functions: DeploymentFacts["functions"] = {};
  for (const r of all.filter((x) => x.type === "aws_lambda_function")) {
    const v = r.values;
    const role = TF_NAMES[`aws_lambda_function.${r.name}`]!;
    environments[role] = sub((v.environment as Obj[])[0]!.variables!) as Record<string, Json>;
    functions[role] = {
      runtime: v.runtime!,
      architectures: v.architectures!,
      memorySize: v.memory_size!,
      timeout: v.timeout!,
      handler: v.handler!,
      reservedConcurrency: v.reserved_concurrent_executions === -1 ? null : v.reserved_concurrent_executions!,
      tracing: (v.tracing_config as Obj[])[0]!.mode!,
      logGroup: swap((planned.get(r.address)!.logging_config as Obj[])[0]!.log_group as string),
      role: swap(v.role as string),
    };
  }

  const orNull = (x: Json | undefined) => (x === "" || x === undefined ? null : x);
  const alarms: DeploymentFacts["alarms"] = {};
  for (const r of all.filter((x) => x.type === "aws_cloudwatch_metric_alarm")) {
    const v = sub(r.values) as Obj;
    const name = (r.values.alarm_name as string).replace(`${env.name}-`, "");
    alarms[name] = alarmShape({
      comparison: v.comparison_operator!,
      threshold: v.threshold!,
      evaluationPeriods: v.evaluation_periods!,
      datapointsToAlarm: v.datapoints_to_alarm!,
      treatMissingData: v.treat_missing_data!,
      actionsEnabled: v.actions_enabled!,
      actions: asList(v.alarm_actions),
      description: v.alarm_description!,
      metric: orNull(v.metric_name)
        ? {
            namespace: v.namespace!,
            name: v.metric_name!,
            dimensions: v.dimensions!,
            period: v.period!,
            stat: v.statistic!,
          }
        : null,
      queries: asList(v.metric_query).map((q) => {
        const m = q as Obj;
        const metric = asList(m.metric)[0] as Obj | undefined;
        return {
          id: m.id!,
          label: orNull(m.label),
          expression: orNull(m.expression),
          returnData: m.return_data!,
          metric: metric
            ? {
                namespace: metric.namespace!,
                name: metric.metric_name!,
                dimensions: metric.dimensions!,
                period: metric.period!,
                stat: metric.stat!,
              }
            : null,
        };
      }),
    });
  }

  const logGroups: DeploymentFacts["logGroups"] = {};
  for (const r of all.filter((x) => x.type === "aws_cloudwatch_log_group")) {
    logGroups[TF_NAMES[`aws_cloudwatch_log_group.${r.name}`]!] = {
      retentionInDays: r.values.retention_in_days as number,
      kmsKey: swap(r.values.kms_key_id as string),
    };
  }

  const policies: DeploymentFacts["policies"] = {
    "codes-key": statements(doc(one("aws_kms_key", "codes").policy)),
    "logs-key": statements(doc(one("aws_kms_key", "logs").policy)),
    topic: statements(doc(one("aws_sns_topic_policy", "alarms").policy)),
    api: statements(doc(one("aws_api_gateway_rest_api_policy", "broker").policy)),
    vpce: statements(doc(one("aws_vpc_endpoint", "api").policy)),
  };
  return { roles, environments, functions, alarms, logGroups, policies };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
