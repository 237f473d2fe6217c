import type { SecretStore } from "./ports";

/** Codes are immutable per activation; a few pools' worth is all a process ever needs. */
const CODE_CACHE_SIZE = 64;
/** GetParameters' limit: the most codes one read can fetch. */
export const MAX_CODES_PER_READ = 10;

/**
 * Activation Codes by activation id, kept for the process's (or Lambda container's) life (I4).
 * A miss reads the wanted code together with those of the activations the pool row names next,
 * in one call: with many containers each meeting most activations, that turns one read per
 * activation per container into one per few. Only ids of activations a reservation or the row
 * named are ever read; what was revoked is never reserved again, so a cached code outlives
 * nothing (I8).
 */
export class CodeCache {
  private readonly codes = new Map<string, Promise<string | undefined>>();

  constructor(private readonly secrets: SecretStore) {}

  /** The code of `activationId`, or undefined when nothing is stored for it (deleted). */
  get(pool: string, activationId: string, alongside: readonly string[] = []): Promise<string | undefined> {
    const cached = this.codes.get(activationId);
    if (cached) return cached;
    const ids = [activationId, ...alongside.filter((id) => !this.codes.has(id) && id !== activationId)].slice(
      0,
      MAX_CODES_PER_READ,
    );
    // Cache the promises, not the values, so a burst on a fresh activation reads it once.
    const read = this.secrets.getMany(pool, ids);
    const codes = ids.map((id) => {
      const code = read.then((found) => found.find((s) => s.activationId === id)?.activationCode);
      this.set(id, code);
      // Neither a failed read nor a missing code is kept: the next request asks again.
      code.then(
        (value) => value === undefined && this.forget(id, code),
        () => this.forget(id, code),
      );
      return code;
    });
    return codes[0] as Promise<string | undefined>; // ids[0] is activationId
  }

  /** A code this process just created: no need to read it back. */
  remember(activationId: string, code: string): void {
    this.set(activationId, Promise.resolve(code));
  }

  delete(activationId: string): void {
    this.codes.delete(activationId);
  }

  private set(activationId: string, code: Promise<string | undefined>): void {
    if (this.codes.size >= CODE_CACHE_SIZE) {
      const oldest = this.codes.keys().next().value;
      if (oldest !== undefined) this.codes.delete(oldest);
    }
    this.codes.set(activationId, code);
  }

  private forget(activationId: string, code: Promise<string | undefined>): void {
    if (this.codes.get(activationId) === code) this.codes.delete(activationId);
  }
}
