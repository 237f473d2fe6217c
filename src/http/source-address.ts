import { BlockList, isIP } from "node:net";

/**
 * Who is calling, as far as the Node server can tell. The TCP peer is the only address nobody can
 * forge; X-Forwarded-* headers are believed only when that peer is a proxy the operator listed in
 * BROKER_TRUSTED_PROXIES, and then only the value the peer itself appended (the last one).
 */

/** Parses "10.0.0.0/8, 192.168.1.7, ::1"; undefined when an entry is not an address or CIDR block. */
export function parseAddressList(text: string): string[] | undefined {
  const entries = text
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  for (const entry of entries) {
    const [address = "", prefix, ...rest] = entry.split("/");
    const family = isIP(address);
    if (family === 0 || rest.length > 0) return undefined;
    if (prefix !== undefined) {
      const bits = Number(prefix);
      if (!/^\d{1,3}$/.test(prefix) || bits > (family === 4 ? 32 : 128)) return undefined;
    }
  }
  return entries;
}

export class TrustedProxies {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(entries: readonly string[]) {
    this.empty = entries.length === 0;
    for (const entry of entries) {
      const [address = "", prefix] = entry.split("/");
      const type = isIP(address) === 6 ? "ipv6" : "ipv4";
      if (prefix === undefined) this.list.addAddress(address, type);
      else this.list.addSubnet(address, Number(prefix), type);
    }
  }

  includes(peer: string | undefined): boolean {
    if (this.empty || peer === undefined) return false;
    const address = unmapped(peer);
    const family = isIP(address);
    return family !== 0 && this.list.check(address, family === 6 ? "ipv6" : "ipv4");
  }
}

/** "::ffff:10.1.2.3" (an IPv4 peer on a dual-stack socket) → "10.1.2.3". */
export function unmapped(address: string): string {
  const match = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return match?.[1] ?? address;
}

/** The last value of a possibly repeated, comma-separated header: the one the peer added. */
export function lastHeaderValue(value: string | string[] | undefined): string | undefined {
  const joined = Array.isArray(value) ? value.join(",") : value;
  if (joined === undefined) return undefined;
  const last = joined.split(",").pop()?.trim();
  return last === "" ? undefined : last;
}

/** The caller's address: the peer, or the address a trusted proxy says it forwarded for. */
export function sourceAddress(
  peer: string | undefined,
  forwardedFor: string | string[] | undefined,
  trusted: TrustedProxies,
): string {
  const direct = unmapped(peer ?? "unknown");
  if (!trusted.includes(peer)) return direct;
  const forwarded = lastHeaderValue(forwardedFor);
  return forwarded !== undefined && isIP(unmapped(forwarded)) !== 0 ? unmapped(forwarded) : direct;
}
