/**
 * Test support (not exported): a real etcd 3.4 process on 127.0.0.1 with ports of its own, and a small
 * HTTP client for comparing gateway answers. Used by the end-to-end tests; needs `etcd` on the PATH.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function etcdAvailable(): boolean {
  return spawnSync("etcd", ["--version"], { stdio: "ignore" }).status === 0;
}

/** A port that was free a moment ago (bound to 0, then released). Ports 2379/2380 and 24790–24899 never come back from the kernel's ephemeral range in practice, and are skipped if they do. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        const bound = typeof address === "object" && address !== null ? address.port : 0;
        server.close(() => resolve(bound));
      });
    });
    if (port !== 2379 && port !== 2380 && !(port >= 24790 && port <= 24899)) return port;
  }
}

export interface RealEtcd {
  readonly clientPort: number;
  readonly peerPort: number;
  /** host:port of the client listener (gRPC and etcd's own gateway). */
  readonly endpoint: string;
  readonly url: string;
  stop(): Promise<void>;
}

/** Starts a single-member etcd named `conf` (as the conformance harness does) and waits until it serves. */
export async function startEtcd(extraArgs: readonly string[] = [], tls?: HttpCall["tls"]): Promise<RealEtcd> {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "etcd-ts-gateway-"));
  const client = `${tls === undefined ? "http" : "https"}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child: ChildProcess = spawn(
    "etcd",
    [
      "--name",
      "conf",
      "--data-dir",
      dataDir,
      "--listen-client-urls",
      client,
      "--advertise-client-urls",
      client,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--initial-cluster",
      `conf=${peer}`,
      "--initial-cluster-token",
      "conf",
      "--initial-cluster-state",
      "new",
      "--log-level",
      "error",
      ...extraArgs,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    log += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
    rmSync(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`etcd exited early: ${log}`);
    }
    try {
      const health = await send({ url: client, method: "GET", path: "/health", ...(tls === undefined ? {} : { tls }) });
      if (health.status === 200 && health.body.includes('"true"')) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`etcd did not become healthy: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { clientPort, peerPort, endpoint: `127.0.0.1:${clientPort}`, url: client, stop };
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly trailers: Record<string, string | undefined>;
}

export interface HttpCall {
  readonly url: string;
  readonly method: string;
  readonly path: string;
  readonly body?: string;
  readonly headers?: Record<string, string>;
  /** For streams: stop reading after this many milliseconds and return what arrived (curl --max-time). */
  readonly cutAfterMs?: number;
  /** For https: URLs, the CA to trust and the client certificate to present (PEM). */
  readonly tls?: { readonly ca: string; readonly cert: string; readonly key: string };
}

/** One HTTP/1.1 request, as curl -d sends it (form content type unless told otherwise). */
export function send(call: HttpCall): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const target = new URL(call.path, call.url);
    const headers: Record<string, string> = { ...call.headers };
    if (call.body !== undefined) {
      headers["content-type"] ??= "application/x-www-form-urlencoded";
      headers["content-length"] = String(Buffer.byteLength(call.body));
    }
    const request = target.protocol === "https:" ? httpsRequest : httpRequest;
    const req = request(
      { host: target.hostname, port: target.port, method: call.method, path: call.path, headers, agent: false, ...call.tls },
      (res) => {
        let body = "";
        let timer: NodeJS.Timeout | undefined;
        const finish = (): void => {
          if (timer !== undefined) clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, trailers: { ...res.trailers } });
        };
        if (call.cutAfterMs !== undefined) {
          timer = setTimeout(() => {
            res.destroy();
            finish();
          }, call.cutAfterMs);
        }
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", finish);
        res.on("error", () => finish());
      },
    );
    if (call.cutAfterMs !== undefined) {
      // A stream that never answers (no status line) is cut the same way: an empty answer.
      const timer = setTimeout(() => {
        req.destroy();
        resolve({ status: 0, headers: {}, body: "", trailers: {} });
      }, call.cutAfterMs);
      req.once("response", () => clearTimeout(timer));
    }
    req.on("error", (error) => {
      if (call.cutAfterMs === undefined) reject(error);
    });
    req.end(call.body);
  });
}

export interface WebSocketSession {
  /** The handshake answer's status line (or the whole answer if it was not upgraded). */
  readonly statusLine: string;
  /** Text messages received, in order. */
  readonly messages: string[];
  /** The raw answer when the server refused to upgrade. */
  readonly refusal?: string;
}

/**
 * A minimal websocket client: GET `path` with an upgrade, send `messages` as masked text frames, collect the
 * server's text frames until it closes or `cutAfterMs` passes.
 */
export function websocketSession(
  url: string,
  path: string,
  messages: readonly string[],
  cutAfterMs: number,
  extraHeaders: Record<string, string> = {},
): Promise<WebSocketSession> {
  const target = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(target.port), target.hostname);
    let buffer = Buffer.alloc(0);
    let statusLine: string | undefined;
    const received: string[] = [];
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const refused = statusLine !== undefined && !statusLine.includes(" 101 ");
      resolve({ statusLine: statusLine ?? "", messages: received, ...(refused ? { refusal: buffer.toString() } : {}) });
    };
    const timer = setTimeout(() => finish(), cutAfterMs);
    socket.on("connect", () => {
      const headers = {
        Host: `${target.hostname}:${target.port}`,
        Upgrade: "websocket",
        Connection: "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        ...extraHeaders,
      };
      const method = extraHeaders["X-Test-Method"] ?? "GET";
      const lines = [`${method} ${path} HTTP/1.1`, ...Object.entries(headers).filter(([k]) => k !== "X-Test-Method").map(([k, v]) => `${k}: ${v}`)];
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    });
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (statusLine === undefined) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString();
        statusLine = head.split("\r\n")[0]!;
        if (!statusLine.includes(" 101 ")) return; // the refusal is collected until close or the cut
        buffer = buffer.subarray(end + 4);
        for (const message of messages) socket.write(maskedTextFrame(message));
      }
      while (statusLine.includes(" 101 ") && buffer.length >= 2) {
        let length = buffer[1]! & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (buffer.length < 4) return;
          length = buffer.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (buffer.length < 10) return;
          length = Number(buffer.readBigUInt64BE(2));
          offset = 10;
        }
        if (buffer.length < offset + length) return;
        const opcode = buffer[0]! & 0x0f;
        if (opcode === 1) received.push(buffer.subarray(offset, offset + length).toString());
        buffer = buffer.subarray(offset + length);
      }
    });
    socket.on("close", () => finish());
    socket.on("error", () => finish());
  });
}

function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const header =
    payload.length < 126
      ? Buffer.from([0x81, 0x80 | payload.length])
      : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!));
  return Buffer.concat([header, mask, masked]);
}

export interface TestCertificates {
  readonly dir: string;
  readonly ca: string;
  readonly caFile: string;
  /** Server certificate for 127.0.0.1 (also usable as a client certificate). */
  readonly server: { readonly cert: string; readonly key: string; readonly certFile: string; readonly keyFile: string };
  /** Client certificate with CommonName `root`. */
  readonly root: { readonly cert: string; readonly key: string };
  /** Client certificate without a CommonName. */
  readonly anonymous: { readonly cert: string; readonly key: string };
}

/** A throwaway CA and certificates made with openssl at test time. */
export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), "etcd-ts-gateway-tls-"));
  const run = (...args: string[]): void => {
    const result = spawnSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    if (result.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${result.stderr.toString()}`);
  };
  run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.crt");
  const issue = (name: string, subject: string, extensions: string): void => {
    writeFileSync(join(dir, `${name}.ext`), extensions);
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", `${name}.key`, "-out", `${name}.csr`);
    run("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-out", `${name}.crt`, "-extfile", `${name}.ext`);
  };
  issue("server", "/O=etcd-ts", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
  issue("root", "/CN=root", "extendedKeyUsage=clientAuth\n");
  issue("anonymous", "/O=nobody", "extendedKeyUsage=clientAuth\n");
  const read = (file: string): string => readFileSync(join(dir, file), "utf8");
  return {
    dir,
    ca: read("ca.crt"),
    caFile: join(dir, "ca.crt"),
    server: { cert: read("server.crt"), key: read("server.key"), certFile: join(dir, "server.crt"), keyFile: join(dir, "server.key") },
    root: { cert: read("root.crt"), key: read("root.key") },
    anonymous: { cert: read("anonymous.crt"), key: read("anonymous.key") },
  };
}
