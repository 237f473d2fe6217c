import { isMap, isScalar, isSeq, parseDocument, type Node } from "yaml";

/**
 * How nodeadm reads a hybrid NodeConfig, and its own checks on it, restated for tests from the
 * documented rules of what it is built on and from its source (github.com/aws/eks-hybrid:
 * api/core.go for the group and kind, internal/node/hybrid/validator.go for the checks):
 *
 * 1. sigs.k8s.io/yaml turns the YAML into JSON with go-yaml (v2 rules, resolve.go), then
 *    encoding/json decodes that into the Go types, strictly: a field the types do not have is an
 *    error, and keys match field names case-insensitively (encoding/json's documented matching).
 * 2. go-yaml v2 reads a quoted scalar as a string, always. A plain one is null (`~`, `null`,
 *    `Null`, `NULL`, empty), a bool (`y Y yes Yes YES on On ON true True TRUE` and the `n no off
 *    false` family), an int (Go's strconv.ParseInt with base 0 after every `_` is removed: `0x`,
 *    `0X`, `0o`, `0O`, `0b`, `0B` and leading-`0` octal, a sign allowed), a float (the YAML float
 *    pattern after `_` removal, `.inf`, `.nan`), else a string.
 * 3. Into a string field sigs.k8s.io/yaml writes such a value back as text: an int in base 10, a
 *    float as strconv.FormatFloat(v, 'g', -1, 32) (goFloat), a bool as true/false, null as "".
 *
 * So `name: 0X1F` reaches nodeadm as "31", `name: 0o17` as "15" and `name: 1e3_0` as "1e+30",
 * while `name: "0X1F"` stays "0X1F".
 */
const ACTIVATION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ACTIVATION_CODE = /^.{20,250}$/;

export interface ParsedNodeConfig {
  apiVersion?: unknown;
  kind?: unknown;
  spec?: {
    cluster?: { name?: unknown; region?: unknown };
    kubelet?: { flags?: unknown };
    hybrid?: {
      ssm?: { activationCode?: unknown; activationId?: unknown };
      iamRolesAnywhere?: unknown;
    };
  };
}

/** The part of nodeadm's types (api/v1alpha1/nodeconfig_types.go) a hybrid NodeConfig uses. */
type Shape = "string" | "strings" | "any" | { readonly [field: string]: Shape };
const NODE_CONFIG: Shape = {
  apiVersion: "string",
  kind: "string",
  metadata: "any",
  spec: {
    cluster: {
      name: "string",
      region: "string",
      apiServerEndpoint: "string",
      certificateAuthority: "string",
      cidr: "string",
      enableOutpost: "any",
      id: "string",
    },
    containerd: "any",
    instance: "any",
    kubelet: { config: "any", flags: "strings" },
    hybrid: {
      enableCredentialsFile: "any",
      iamRolesAnywhere: "any",
      ssm: { activationCode: "string", activationId: "string" },
    },
  },
};

export type GoYamlValue =
  | { tag: "null" }
  | { tag: "bool"; value: boolean }
  | { tag: "int"; value: number }
  | { tag: "float"; value: number }
  | { tag: "str"; value: string };

/** A plain scalar as go-yaml v2 resolves it. */
export function goYamlScalar(text: string): GoYamlValue {
  if (["", "~", "null", "Null", "NULL"].includes(text)) return { tag: "null" };
  if (["y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"].includes(text)) {
    return { tag: "bool", value: true };
  }
  if (["n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"].includes(text)) {
    return { tag: "bool", value: false };
  }
  const special: Record<string, number> = {
    ".inf": Infinity,
    "+.inf": Infinity,
    "-.inf": -Infinity,
    ".nan": NaN,
  };
  const named = special[text.toLowerCase()];
  if (named !== undefined && /^[-+]?\.(inf|Inf|INF|nan|NaN|NAN)$/.test(text))
    return { tag: "float", value: named };
  if (!/^[-+.0-9]/.test(text)) return { tag: "str", value: text };
  const plain = text.replaceAll("_", "");
  const int = goParseInt(plain);
  if (int !== undefined) return { tag: "int", value: int };
  if (/^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/.test(plain))
    return { tag: "float", value: Number(plain) };
  return { tag: "str", value: text };
}

/** strconv.ParseInt(s, 0, 64) for the values a test uses (exactness past 2^53 is not needed). */
function goParseInt(s: string): number | undefined {
  const m = /^([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return undefined;
  const digits = m[2]!;
  const value = /^0[0-7]+$/.test(digits)
    ? parseInt(digits.slice(1), 8)
    : /^0[oO]/.test(digits)
      ? parseInt(digits.slice(2), 8)
      : Number(digits.replace(/^0[xX]/, "0x").replace(/^0[bB]/, "0b"));
  return m[1] === "-" ? -value : value;
}

/** strconv.FormatFloat(v, 'g', -1, 32): shortest float32 digits, exponent form below 1e-4 or from 1e+6 up. */
export function goFloat(value: number): string {
  if (Number.isNaN(value)) return ".nan"; // sigs.k8s.io/yaml's own spelling
  if (!Number.isFinite(value)) return value > 0 ? ".inf" : "-.inf";
  const f32 = Math.fround(value);
  // The shortest decimal that reads back as the same float32.
  let digits = "";
  for (let p = 1; p <= 9; p++) {
    digits = f32.toPrecision(p);
    if (Math.fround(Number(digits)) === f32) break;
  }
  const [mantissa, exp] = Number(digits).toExponential().split("e") as [string, string];
  const e = Number(exp);
  if (e < -4 || e >= 6) return `${mantissa}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  return String(Number(digits));
}

function asString(node: Node | null, path: string): string {
  if (!isScalar(node)) throw new Error(`${path}: expected a string`);
  const raw = String(node.value);
  if (node.type !== "PLAIN") return raw;
  const resolved = goYamlScalar(raw);
  switch (resolved.tag) {
    case "null":
      return "";
    case "float":
      return goFloat(resolved.value);
    case "bool":
    case "int":
      return String(resolved.value);
    case "str":
      return resolved.value;
  }
}

function decode(node: Node | null, shape: Shape, path: string): unknown {
  if (shape === "any") return node?.toJSON();
  if (shape === "string") return asString(node, path);
  if (shape === "strings") {
    if (!isSeq(node)) throw new Error(`${path}: expected a list of strings`);
    return node.items.map((item, i) => asString(item as Node, `${path}[${i}]`));
  }
  if (!isMap(node)) throw new Error(`${path}: expected an object`);
  const out: Record<string, unknown> = {};
  for (const pair of node.items) {
    const key = String(isScalar(pair.key) ? pair.key.value : pair.key);
    // encoding/json: an exact match first, else a case-insensitive one; none is an unknown field.
    const field =
      Object.keys(shape).find((f) => f === key) ??
      Object.keys(shape).find((f) => f.toLowerCase() === key.toLowerCase());
    if (field === undefined) throw new Error(`${path}: unknown field "${key}"`);
    out[field] = decode(pair.value as Node, shape[field]!, `${path}.${field}`);
  }
  return out;
}

/** Reads a NodeConfig as nodeadm does; throws what nodeadm would refuse to decode. */
export function parseNodeConfig(text: string): ParsedNodeConfig {
  // failsafe: every scalar keeps its source text; goYamlScalar does the resolving.
  const doc = parseDocument(text, { schema: "failsafe" });
  if (doc.errors.length > 0) throw new Error(doc.errors[0]!.message);
  return decode(doc.contents as Node, NODE_CONFIG, "NodeConfig") as ParsedNodeConfig;
}

export function nodeadmProblem(config: ParsedNodeConfig): string | undefined {
  if (config.apiVersion !== "node.eks.aws/v1alpha1") return "apiVersion";
  if (config.kind !== "NodeConfig") return "kind";
  const spec = config.spec ?? {};
  const cluster = spec.cluster ?? {};
  if (typeof cluster.name !== "string" || cluster.name === "") return "Name is missing";
  if (typeof cluster.region !== "string" || cluster.region === "") return "Region is missing";
  const flags = spec.kubelet?.flags ?? [];
  if (!Array.isArray(flags) || !flags.every((f) => typeof f === "string")) return "flags are strings";
  // Only a value is refused: `--hostname-override=` with nothing after it names nothing.
  if (flags.some((f: string) => /^--hostname-override=./.test(f))) return "hostname-override";
  const ssm = spec.hybrid?.ssm;
  const ira = spec.hybrid?.iamRolesAnywhere;
  if (!ssm && !ira) return "Either IAMRolesAnywhere or SSM must be provided";
  if (ssm && ira) return "Only one of IAMRolesAnywhere or SSM";
  if (ira) return "not an SSM config";
  const code = ssm!.activationCode;
  const id = ssm!.activationId;
  if (typeof code !== "string" || code === "") return "ActivationCode is missing";
  if (typeof id !== "string" || id === "") return "ActivationID is missing";
  if (!ACTIVATION_CODE.test(code)) return "ActivationCode must be 20-250 characters";
  if (!ACTIVATION_ID.test(id)) return "ActivationID format";
  return undefined;
}
