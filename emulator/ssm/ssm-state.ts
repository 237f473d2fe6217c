import type { EmulatorClock } from "../clock";
import type { Tag } from "./request-fields";

export interface ActivationRecord {
  readonly activationId: string;
  /** Secret: never logged, never returned by Describe*, never exposed through the controls. */
  readonly activationCode: string;
  readonly description?: string;
  readonly defaultInstanceName?: string;
  readonly iamRole: string;
  readonly registrationLimit: number;
  registrationsCount: number;
  readonly expirationDate: Date;
  readonly createdDate: Date;
  readonly tags: Tag[];
  /** Sort key that keeps creation order across pages. */
  readonly seq: string;
}

export interface ManagedNodeRecord {
  readonly instanceId: string;
  readonly activationId: string;
  readonly iamRole: string;
  readonly name?: string;
  /** What the agent reports after registering (its heartbeat); tests set it through the controls. */
  computerName?: string;
  ipAddress?: string;
  readonly registrationDate: Date;
  lastPingDateTime: Date;
  pingStatus: "Online" | "ConnectionLost" | "Inactive";
  /** The agent's random per-install UUID from RegisterManagedInstance. */
  readonly fingerprint?: string;
  tags: Tag[];
  readonly seq: string;
}

export interface ParameterVersion {
  readonly version: number;
  readonly type: "String" | "StringList" | "SecureString";
  /** Plaintext; only returned for SecureString when WithDecryption is true. */
  readonly value: string;
  /** What a caller without decryption sees for a SecureString: an opaque, stable blob. */
  readonly ciphertext?: string;
  readonly keyId?: string;
  readonly description?: string;
  readonly allowedPattern?: string;
  readonly tier: "Standard" | "Advanced";
  readonly dataType: string;
  readonly lastModifiedDate: Date;
}

export interface ParameterRecord {
  readonly name: string;
  versions: ParameterVersion[];
  tags: Tag[];
}

/**
 * "Number of parameters (standard tier): 10,000" per account and Region; past it PutParameter
 * answers ParameterLimitExceeded. Advanced parameters have a separate quota (100,000).
 * https://docs.aws.amazon.com/general/latest/gr/ssm.html (Systems Manager service quotas)
 * https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html
 */
export const STANDARD_PARAMETER_QUOTA = 10_000;

/** Everything SSM remembers; one instance per emulator, cleared by `controls.reset()`. */
export class SsmState {
  readonly activations = new Map<string, ActivationRecord>();
  readonly managedNodes = new Map<string, ManagedNodeRecord>();
  readonly parameters = new Map<string, ParameterRecord>();
  /** Lowered by tests (controls.setParameterQuota) so they need not create 10,000 parameters. */
  standardParameterQuota = STANDARD_PARAMETER_QUOTA;
  private counter = 0;

  constructor(
    readonly clock: EmulatorClock,
    readonly region: string,
    readonly accountId: string,
  ) {}

  nextSeq(): string {
    this.counter += 1;
    return String(this.counter).padStart(12, "0");
  }

  clear(): void {
    this.activations.clear();
    this.managedNodes.clear();
    this.parameters.clear();
    this.standardParameterQuota = STANDARD_PARAMETER_QUOTA;
  }

  standardParameterCount(): number {
    let count = 0;
    for (const p of this.parameters.values())
      if (p.versions[p.versions.length - 1]?.tier === "Standard") count++;
    return count;
  }
}
