/**
 * The install scripts' test harness: one loopback HTTP server with three jobs.
 *
 *   /broker/...      a transparent proxy to the real broker, which first plays scripted faults
 *                    (POST /__faults [{"status":503,"retryAfter":1}, ...]); lets a test see a
 *                    503-then-200 sequence while the 200 still comes from the real broker;
 *   /s3/{region}/latest/{folder}/{file}, /s3/{region}/ssm-agent-manifest.json
 *                    the regional agent bucket (the sandboxed scripts' BUCKET, or a
 *                    "mirror" with --mirror-url <url>/s3/mirror): the stub ssm-setup-cli, the
 *                    manifest ssm-setup-cli reads first, fake rpm/deb packages and their ".sig"
 *                    (the sha256 the gpg stub checks); POST /__s3/missing ["ssm-setup-cli"] makes
 *                    files 404,
 *                    POST /__s3/bad-signatures makes every .sig wrong;
 *   /eks/{amd64|arm64}/nodeadm(.sha256)
 *                    nodeadm's release location (the sandboxed NODEADM_RELEASES): the stub nodeadm
 *                    and its SHA-256 as `sha256sum` prints it (wrong after POST /__s3/bad-signatures,
 *                    404 after POST /__s3/missing ["nodeadm"]);
 *   /__requests      what was asked of /broker, /s3 and /eks since the last POST /__reset;
 *   /__last-code     the ActivationCode of the last 200 the proxy relayed (a JSON pair or a
 *                    NodeConfig's activationCode), so a test can prove
 *                    the script never shows the very code it was given.
 *
 * Nothing leaves 127.0.0.1: the script's downloads come here instead of AWS.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, request } from "node:http";
import { fileURLToPath } from "node:url";
import { closeServer, listen, readBody, sendJson } from "./http";

export interface Fault {
  readonly status: number;
  readonly retryAfter?: number;
  /** Raw body; default: an error body as docs/http-api.md shows. */
  readonly body?: string;
  /** Send a Content-Length header (default: chunked, as a streaming server would). */
  readonly contentLength?: boolean;
}

export interface Harness {
  readonly url: string;
  close(): Promise<void>;
}

const STUB_SETUP_CLI = fileURLToPath(new URL("../stubs/ssm-setup-cli", import.meta.url));
const STUB_NODEADM = fileURLToPath(new URL("../stubs/nodeadm", import.meta.url));
const FOLDERS = new Set(["linux_amd64", "linux_arm64", "debian_amd64", "debian_arm64"]);

export function fakePackage(folder: string, file: string): string {
  return `FAKE-AMAZON-SSM-AGENT-PACKAGE ${folder}/${file}\n`;
}

export async function startHarness(brokerUrl: string): Promise<Harness> {
  const target = new URL(brokerUrl);
  let faults: Fault[] = [];
  let missing = new Set<string>();
  let badSignatures = false;
  let requests: string[] = [];
  let lastCode = "";

  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    void readBody(req).then((raw) => {
      if (path === "/__reset" && req.method === "POST") {
        faults = [];
        missing = new Set();
        badSignatures = false;
        requests = [];
        lastCode = "";
        return sendJson(res, 200, {});
      }
      if (path === "/__faults" && req.method === "POST") {
        faults = JSON.parse(raw) as Fault[];
        return sendJson(res, 200, {});
      }
      if (path === "/__s3/missing" && req.method === "POST") {
        missing = new Set(JSON.parse(raw) as string[]);
        return sendJson(res, 200, {});
      }
      if (path === "/__s3/bad-signatures" && req.method === "POST") {
        badSignatures = true;
        return sendJson(res, 200, {});
      }
      if (path === "/__last-code") {
        res.writeHead(200, { "Content-Type": "text/plain" });
        return res.end(lastCode);
      }
      if (path === "/__requests") {
        res.writeHead(200, { "Content-Type": "text/plain" });
        return res.end(requests.map((r) => `${r}\n`).join(""));
      }

      if (path.startsWith("/broker/") || path === "/broker") {
        // With the query: a second request names the activation SSM refused (?refused=).
        requests.push(`broker ${req.method} ${(req.url ?? "/").slice("/broker".length) || "/"}`);
        const fault = faults.shift();
        if (fault) {
          const headers: Record<string, string> = { "Content-Type": "application/json" };
          if (fault.retryAfter !== undefined) headers["Retry-After"] = String(fault.retryAfter);
          const body =
            fault.body ??
            JSON.stringify({ error: { code: "Scripted", message: `scripted ${fault.status}` } });
          if (fault.contentLength) headers["Content-Length"] = String(Buffer.byteLength(body));
          res.writeHead(fault.status, headers);
          return res.end(body);
        }
        const upstream = request(
          {
            host: target.hostname,
            port: target.port,
            method: req.method,
            path: `${target.pathname.replace(/\/$/, "")}${(req.url ?? "/").slice("/broker".length) || "/"}`,
            headers: { ...req.headers, host: target.host },
          },
          (answer) => {
            const chunks: Buffer[] = [];
            answer.on("data", (chunk: Buffer) => chunks.push(chunk));
            answer.on("end", () => {
              const text = Buffer.concat(chunks);
              if (answer.statusCode === 200) lastCode = codeIn(text.toString("utf8"));
              res.writeHead(answer.statusCode ?? 502, answer.headers);
              res.end(text);
            });
          },
        );
        upstream.on("error", () =>
          sendJson(res, 502, { error: { code: "BadGateway", message: "broker down" } }),
        );
        return upstream.end(raw);
      }

      const eks = /^\/eks\/(amd64|arm64)\/(nodeadm(?:\.sha256)?)$/.exec(path);
      if (eks) {
        requests.push(`eks ${eks[1]}/${eks[2]}`);
        if (missing.has("nodeadm")) {
          res.writeHead(404, { "Content-Type": "application/xml" });
          return res.end("<Error><Code>NoSuchKey</Code></Error>");
        }
        const binary = readFileSync(STUB_NODEADM);
        const sum = badSignatures ? "0".repeat(64) : createHash("sha256").update(binary).digest("hex");
        res.writeHead(200, { "Content-Type": "application/octet-stream" });
        return res.end(eks[2] === "nodeadm" ? binary : `${sum}  nodeadm\n`);
      }
      const manifest = /^\/s3\/([a-z0-9-]+)\/ssm-agent-manifest\.json$/.exec(path);
      if (manifest) {
        requests.push(`s3 ${manifest[1]}/ssm-agent-manifest.json`);
        if (missing.has("ssm-agent-manifest.json")) {
          res.writeHead(404, { "Content-Type": "application/xml" });
          return res.end("<Error><Code>NoSuchKey</Code></Error>");
        }
        return sendJson(res, 200, { ManifestVersion: "1.0", Packages: [] });
      }
      const s3 = /^\/s3\/([a-z0-9-]+)\/latest\/([a-z0-9_]+)\/([A-Za-z0-9.-]+)$/.exec(path);
      if (s3) {
        const [, region, folder, file] = s3 as unknown as [string, string, string, string];
        requests.push(`s3 ${region}/latest/${folder}/${file}`);
        const base = file.replace(/\.sig$/, "");
        const known =
          FOLDERS.has(folder) &&
          (file === "ssm-setup-cli" ||
            (folder.startsWith("linux_") && base === "amazon-ssm-agent.rpm") ||
            (folder.startsWith("debian_") && base === "amazon-ssm-agent.deb"));
        if (!known || missing.has(file)) {
          res.writeHead(404, { "Content-Type": "application/xml" });
          return res.end("<Error><Code>NoSuchKey</Code></Error>");
        }
        let content: string;
        if (file === "ssm-setup-cli") content = readFileSync(STUB_SETUP_CLI, "utf8");
        else if (file.endsWith(".sig")) {
          content = badSignatures
            ? "0".repeat(64)
            : createHash("sha256").update(fakePackage(folder, base)).digest("hex");
        } else content = fakePackage(folder, file);
        res.writeHead(200, { "Content-Type": "application/octet-stream" });
        return res.end(content);
      }
      res.writeHead(404);
      return res.end();
    });
  });

  const url = await listen(server);
  return { url, close: () => closeServer(server) };
}

/** The code in a broker answer: the text pair's ACTIVATION_CODE or a NodeConfig's activationCode. */
function codeIn(text: string): string {
  return (
    /^ACTIVATION_CODE=(\S+)$/m.exec(text)?.[1] ??
    /^\s+activationCode:\s*"?([^"\s]+)"?\s*$/m.exec(text)?.[1] ??
    ""
  );
}
