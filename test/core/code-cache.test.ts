import { describe, expect, it } from "vitest";
import { CodeCache } from "../../src/core/code-cache";
import { InMemorySecrets } from "../support/fakes";

/** A store holding codes for `ids` (code of X is `code-X`), recording what each read asked for. */
async function secretsFor(ids: readonly string[]) {
  const secrets = new InMemorySecrets();
  for (const activationId of ids) {
    await secrets.put({ pool: "p", activationId, activationCode: `code-${activationId}`, expiresAt: 1 });
  }
  const asked: string[][] = [];
  const getMany = secrets.getMany.bind(secrets);
  secrets.getMany = (pool, activationIds) => (asked.push([...activationIds]), getMany(pool, activationIds));
  return { secrets, asked };
}

const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `a${i + from}`);

describe("CodeCache", () => {
  it("reads the wanted code with the next ones in one call, and serves them all from memory after", async () => {
    const { secrets, asked } = await secretsFor(["a", "b", "c"]);
    const cache = new CodeCache(secrets);
    expect(await cache.get("p", "a", ["b", "c"])).toBe("code-a");
    expect(await cache.get("p", "b")).toBe("code-b");
    expect(await cache.get("p", "c", ["a"])).toBe("code-c");
    expect(asked).toEqual([["a", "b", "c"]]);
  });

  it("asks only for what it does not hold, the wanted one first, never more than ten", async () => {
    const { secrets, asked } = await secretsFor(ids(12));
    const cache = new CodeCache(secrets);
    await cache.get("p", "a0");
    expect(await cache.get("p", "a1", ["a1", "a0", ...ids(10, 2)])).toBe("code-a1");
    expect(asked).toEqual([["a0"], ["a1", ...ids(9, 2)]]);
  });

  it("a burst on one activation reads it once", async () => {
    const { secrets, asked } = await secretsFor(["a"]);
    const cache = new CodeCache(secrets);
    const codes = await Promise.all([cache.get("p", "a"), cache.get("p", "a"), cache.get("p", "a")]);
    expect(codes).toEqual(["code-a", "code-a", "code-a"]);
    expect(asked).toHaveLength(1);
  });

  it("answers undefined for a code that is gone, and does not remember that", async () => {
    const { secrets, asked } = await secretsFor([]);
    const cache = new CodeCache(secrets);
    expect(await cache.get("p", "a", ["b"])).toBeUndefined();
    await secrets.put({ pool: "p", activationId: "b", activationCode: "code-b", expiresAt: 1 });
    expect(await cache.get("p", "b")).toBe("code-b");
    expect(await cache.get("p", "a")).toBeUndefined();
    expect(asked).toEqual([["a", "b"], ["b"], ["a"]]);
  });

  it("does not keep a failed read: the next request reads again", async () => {
    const { secrets, asked } = await secretsFor(["a", "b"]);
    const cache = new CodeCache(secrets);
    const getMany = secrets.getMany;
    secrets.getMany = () => Promise.reject(new Error("throttled"));
    await expect(cache.get("p", "a", ["b"])).rejects.toThrow("throttled");
    secrets.getMany = getMany;
    expect(await cache.get("p", "b")).toBe("code-b");
    expect(await cache.get("p", "a")).toBe("code-a");
    expect(asked).toEqual([["b"], ["a"]]);
  });

  it("a code it was told, or one it forgot, costs no read, or one", async () => {
    const { secrets, asked } = await secretsFor(["a"]);
    const cache = new CodeCache(secrets);
    cache.remember("new", "code-new");
    expect(await cache.get("p", "new")).toBe("code-new");
    expect(asked).toEqual([]);
    await cache.get("p", "a");
    cache.delete("a");
    await cache.get("p", "a");
    expect(asked).toEqual([["a"], ["a"]]);
  });

  it("a read that comes back empty after the code was told again does not forget the new one", async () => {
    const { secrets, asked } = await secretsFor([]);
    const cache = new CodeCache(secrets);
    const stale = cache.get("p", "a");
    cache.delete("a");
    cache.remember("a", "code-a");
    expect(await stale).toBeUndefined();
    expect(await cache.get("p", "a")).toBe("code-a");
    expect(asked).toEqual([["a"]]);
  });

  it("holds 64 codes: the 65th pushes out the oldest", async () => {
    const { secrets, asked } = await secretsFor(ids(65));
    const cache = new CodeCache(secrets);
    for (const id of ids(64)) await cache.get("p", id);
    await cache.get("p", "a0");
    expect(asked).toHaveLength(64);
    await cache.get("p", "a64");
    await cache.get("p", "a1");
    expect(asked).toHaveLength(65);
    await cache.get("p", "a0");
    expect(asked).toHaveLength(66);
  });
});
