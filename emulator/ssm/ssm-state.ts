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

/** Everything SSM remembers; one instance per emulator, cleared by `controls.reset()`. */
export class SsmState {
  readonly activations = new Map<string, ActivationRecord>();
  readonly managedNodes = new Map<string, ManagedNodeRecord>();
  readonly parameters = new Map<string, ParameterRecord>();
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
  }
}
