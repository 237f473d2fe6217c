/**
 * Fills the broker's URL and a pool into the bootstrap scripts served at GET /install.sh,
 * GET /install.ps1 and GET /install-eks.sh. The script texts themselves are data (agent/, embedded
 * by agent-scripts.ts); this module is the only code that touches them.
 */

/** The markers in each script of agent/, each present exactly once. */
export const PLACEHOLDERS = { brokerUrl: "__BROKER_URL__", pool: "__BROKER_POOL__" } as const;

export type InstallScriptKind = "sh" | "ps1" | "eks";

export interface InstallScriptValues {
  /** The broker's public base URL, e.g. https://abc.execute-api.eu-west-1.amazonaws.com/prod */
  readonly brokerUrl: string;
  /** Pool name, or "" for the default pool. */
  readonly pool: string;
}

export type InstallScriptTemplates = Readonly<Record<InstallScriptKind, string>>;

// Both values land inside a quoted literal of a script that runs as root: "…" in bash, '…' in
// PowerShell. Only characters with no meaning inside either pass — no quote, $, `, \, whitespace
// or control character — and anything else is refused, never escaped: escaping rules differ
// between the two shells, a refusal cannot be got wrong.
const BROKER_URL_PATTERN =
  /^https?:\/\/(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?(?:\/[A-Za-z0-9._~%/-]*)?$/;
const MAX_BROKER_URL_LENGTH = 2048;
const POOL_PATTERN = /^[A-Za-z0-9_-]{0,64}$/;

export class InvalidInstallScriptValueError extends Error {
  override readonly name = "InvalidInstallScriptValueError";
  readonly code = "InvalidInstallScriptValue";
  constructor(readonly field: keyof InstallScriptValues) {
    super(`Refusing to render the install script: ${field} has characters outside its safe set.`);
  }
}

/** One script with the URL and pool filled in; throws InvalidInstallScriptValueError first. */
export function fillInstallScript(template: string, values: InstallScriptValues): string {
  if (values.brokerUrl.length > MAX_BROKER_URL_LENGTH || !BROKER_URL_PATTERN.test(values.brokerUrl)) {
    throw new InvalidInstallScriptValueError("brokerUrl");
  }
  if (!POOL_PATTERN.test(values.pool)) throw new InvalidInstallScriptValueError("pool");
  const brokerUrl = values.brokerUrl.replace(/\/+$/, "");
  // Function replacers: a "$&" or "$1" in a value is never interpreted by String.replace.
  return template
    .replace(PLACEHOLDERS.brokerUrl, () => brokerUrl)
    .replace(PLACEHOLDERS.pool, () => values.pool);
}

/**
 * The renderer the HTTP handler takes, over the script texts. A text without its placeholders
 * once each is refused here, when the broker starts, rather than served without the URL.
 */
export function installScriptRenderer(
  templates: InstallScriptTemplates,
): (kind: InstallScriptKind, values: InstallScriptValues) => string {
  for (const [kind, text] of Object.entries(templates)) {
    const problems = placeholderProblems(text);
    if (problems.length > 0) throw new Error(`install script '${kind}' ${problems.join("; ")}`);
  }
  return (kind, values) => fillInstallScript(templates[kind], values);
}

/** Why a script text cannot be served: each placeholder must occur exactly once. */
export function placeholderProblems(text: string): string[] {
  return Object.values(PLACEHOLDERS).flatMap((marker) => {
    const count = text.split(marker).length - 1;
    return count === 1 ? [] : [`must contain ${marker} exactly once (found ${count})`];
  });
}
