/**
 * A token bucket per source address: `ratePerSecond` tokens refill each bucket, at most `burst`
 * are kept, and each request takes one. Memory is bounded: at most `maxSources` buckets are
 * tracked; the least recently seen source is forgotten first (it comes back with a full bucket,
 * which only ever favours a caller that had gone quiet).
 */
export interface RateLimitOptions {
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly maxSources: number;
}

export type RateDecision =
  { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export class SourceRateLimiter {
  // Map keeps insertion order: re-inserting on every hit makes the first key the least recent.
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly options: RateLimitOptions) {}

  get trackedSources(): number {
    return this.buckets.size;
  }

  take(source: string, now: number): RateDecision {
    const { ratePerSecond, burst, maxSources } = this.options;
    const bucket = this.buckets.get(source) ?? { tokens: burst, updatedAt: now };
    this.buckets.delete(source);
    const elapsedSeconds = Math.max(0, now - bucket.updatedAt) / 1000;
    bucket.tokens = Math.min(burst, bucket.tokens + elapsedSeconds * ratePerSecond);
    bucket.updatedAt = now;
    this.buckets.set(source, bucket);
    while (this.buckets.size > maxSources) {
      const oldest = this.buckets.keys().next().value;
      if (oldest === undefined) break;
      this.buckets.delete(oldest);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerSecond)) };
  }
}
