/**
 * The emulator's notion of "now". Tests move it forward instead of sleeping, so expiry
 * (an activation's `Expired` flag, `ActivationExpired`, the 30-day rule) can be exercised in
 * milliseconds. Only the emulator's clock moves; the caller's clock stays real.
 */
export class EmulatorClock {
  private offsetMs = 0;

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  get offsetSeconds(): number {
    return this.offsetMs / 1000;
  }

  setOffsetSeconds(seconds: number): void {
    if (!Number.isFinite(seconds)) throw new TypeError("offsetSeconds must be a finite number");
    this.offsetMs = Math.round(seconds * 1000);
  }
}
