import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { createSecureContext, type SecureContextOptions, type TlsOptions } from "node:tls";
import { credentials as grpcCredentials, type ChannelCredentials } from "@grpc/grpc-js";
import type { ServerConfig } from "./config.js";

/**
 * TLS as etcd configures it: one `TlsInfo` for the client URLs (`--cert-file`, `--key-file`,
 * `--trusted-ca-file`, `--client-cert-auth`, `--auto-tls`) and one for the peer URLs (the `--peer-*`
 * flags). From a `TlsInfo` come the options of the listening side (`serverTlsOptions`) and of the
 * dialling side (`dialTlsOptions`: peers dial each other with the peer certificate, the JSON gateway
 * dials its own member with the client certificate).
 */
export interface TlsInfo {
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly trustedCaFile?: string;
  /** Require and verify a client certificate signed by `trustedCaFile`. */
  readonly clientCertAuth?: boolean;
  /** Without cert/key files: generate a self-signed certificate at start (dialling then skips verification). */
  readonly autoTls?: boolean;
}

export type TlsRole = "client" | "peer";

export class TlsConfigError extends Error {
  override readonly name = "TlsConfigError";
}

/** By name, not prototype, so an error from another installed copy of the package counts too. */
export function isTlsConfigError(error: unknown): error is TlsConfigError {
  return error instanceof Error && error.name === "TlsConfigError";
}

/** Flag names per role, for error messages that say what to fix. */
function flagName(role: TlsRole, flag: "cert-file" | "key-file" | "trusted-ca-file"): string {
  return role === "peer" ? `--peer-${flag}` : `--${flag}`;
}

/** Whether `info` gives this side anything to serve TLS with. */
export function hasTls(info: TlsInfo | undefined): boolean {
  return info !== undefined && ((info.certFile !== undefined && info.keyFile !== undefined) || info.autoTls === true);
}

/** Whether any of `urls` is https (or unixs, which etcd treats as TLS over a unix socket). */
export function usesTls(urls: readonly string[]): boolean {
  return urls.some((u) => u.startsWith("https://") || u.startsWith("unixs://"));
}

/**
 * Fills in `certFile`/`keyFile` for `--auto-tls`: a self-signed certificate for `hosts` under
 * `<data-dir>/fixtures/<role>` (etcd's place), reused when one is already there, as etcd's SelfCert.
 * Given files win over auto TLS, as in etcd.
 */
export function resolveAutoTls(info: TlsInfo | undefined, role: TlsRole, dataDir: string, hosts: readonly string[]): TlsInfo | undefined {
  if (info === undefined || info.autoTls !== true || (info.certFile !== undefined && info.keyFile !== undefined)) return info;
  const dir = join(dataDir, "fixtures", role);
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  if (!existsSync(certFile) || !existsSync(keyFile)) generateSelfSignedCertificate(dir, hosts);
  return { ...info, certFile, keyFile };
}

/**
 * Writes `cert.pem` and `key.pem` (ECDSA P-256, one year, etcd's choices) for `hosts` (IPs and names from
 * the listen URLs) into `dir`, with `openssl`; Node's crypto cannot issue certificates.
 */
export function generateSelfSignedCertificate(dir: string, hosts: readonly string[]): { certFile: string; keyFile: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  const names = [...new Set(hosts.length > 0 ? hosts : ["127.0.0.1", "localhost"])];
  const san = names.map((h) => (/^[\d.]+$/.test(h) || h.includes(":") ? `IP:${h}` : `DNS:${h}`)).join(",");
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-keyout",
        keyFile,
        "-out",
        certFile,
        "-days",
        "365",
        "-subj",
        "/O=etcd",
        "-addext",
        `subjectAltName=${san}`,
        "-addext",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "-addext",
        "extendedKeyUsage=serverAuth,clientAuth",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
  } catch (error) {
    const detail = (error as { stderr?: Buffer }).stderr?.toString().trim() || (error as Error).message;
    throw new TlsConfigError(`cannot generate a self-signed certificate in ${dir} (--auto-tls needs openssl): ${detail}`);
  }
  return { certFile, keyFile };
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file or directory" : code === "EACCES" ? "permission denied" : (error as Error).message;
    throw new TlsConfigError(`cannot read ${flag} "${path}": ${why}`);
  }
}

/** Reads cert, key and CA, and checks them the way the TLS stack will use them. */
function loadKeyPair(info: TlsInfo, role: TlsRole): Pick<SecureContextOptions, "cert" | "key" | "ca"> {
  if (info.certFile === undefined || info.keyFile === undefined) {
    const missing = info.certFile === undefined ? flagName(role, "cert-file") : flagName(role, "key-file");
    throw new TlsConfigError(`${missing} is missing: ${flagName(role, "cert-file")} and ${flagName(role, "key-file")} go together`);
  }
  const cert = readPem(info.certFile, flagName(role, "cert-file"));
  const key = readPem(info.keyFile, flagName(role, "key-file"));
  const ca = info.trustedCaFile !== undefined ? readPem(info.trustedCaFile, flagName(role, "trusted-ca-file")) : undefined;
  try {
    createSecureContext({ cert, key, ...(ca !== undefined ? { ca } : {}) });
  } catch (error) {
    throw new TlsConfigError(
      `${flagName(role, "cert-file")} "${info.certFile}" and ${flagName(role, "key-file")} "${info.keyFile}" are not a usable key pair: ${(error as Error).message}`,
    );
  }
  return { cert, key, ...(ca !== undefined ? { ca } : {}) };
}

/**
 * Options for a TLS listener (client port or peer port). With client-cert-auth a client must present a
 * certificate signed by the trusted CA; without it none is asked for, as etcd's.
 */
export function serverTlsOptions(info: TlsInfo, role: TlsRole): TlsOptions {
  const pair = loadKeyPair(info, role);
  if (info.clientCertAuth === true && pair.ca === undefined) {
    throw new TlsConfigError(
      `${role === "peer" ? "--peer-client-cert-auth" : "--client-cert-auth"} needs ${flagName(role, "trusted-ca-file")}`,
    );
  }
  return {
    ...pair,
    requestCert: info.clientCertAuth === true,
    rejectUnauthorized: info.clientCertAuth === true,
    minVersion: "TLSv1.2",
  };
}

/**
 * Options for dialling a TLS endpoint with this side's certificate (presented when the other side asks
 * for one). The server is verified against the trusted CA, or not at all with auto TLS (etcd sets
 * InsecureSkipVerify for self-signed peers); names are not checked, as etcd dials members by IP.
 */
export function dialTlsOptions(
  info: TlsInfo,
  role: TlsRole,
): { cert?: Buffer; key?: Buffer; ca?: Buffer; rejectUnauthorized: boolean; checkServerIdentity: () => undefined } {
  const pair = hasTls(info) ? loadKeyPair(info, role) : {};
  return {
    ...(pair.cert !== undefined ? { cert: pair.cert as Buffer, key: pair.key as Buffer } : {}),
    ...(pair.ca !== undefined ? { ca: pair.ca as Buffer } : {}),
    rejectUnauthorized: !(info.autoTls === true && info.trustedCaFile === undefined),
    checkServerIdentity: () => undefined,
  };
}

/** The hosts of `urls` (for an auto-TLS certificate's names); wildcards become loopback and localhost. */
export function hostsOf(urls: readonly string[]): string[] {
  const hosts = new Set<string>();
  for (const url of urls) {
    try {
      const host = new URL(url).hostname.replace(/^\[(.*)\]$/, "$1");
      if (host === "" || host === "0.0.0.0" || host === "::") {
        hosts.add("127.0.0.1");
        hosts.add("localhost");
      } else hosts.add(host);
    } catch {
      // parseListenUrl reports bad URLs.
    }
  }
  return [...hosts];
}

// ---- the peer side ----
//
// The peer listener, the raft streams, lease and promote forwarding, `/members` fetches and snapshot
// transfer each open their own HTTP connections; rather than thread TLS options through each of them,
// they ask this module. The settings are per process: the binary runs one member. (In-process tests
// that start several members share them, which is right when they share a CA, as such tests do.)

let peerListenOptions: TlsOptions | undefined;
let peerDialOptions: ReturnType<typeof dialTlsOptions> | undefined;

/** Sets (or, with undefined, clears) the TLS the peer listener serves and peers are dialled with. */
export function configurePeerTls(settings: { listen?: TlsOptions; dial?: ReturnType<typeof dialTlsOptions> } | undefined): void {
  peerListenOptions = settings?.listen;
  peerDialOptions = settings?.dial;
}

/** TLS options for a peer listener on `url`; undefined for http. Throws when https has no certificate. */
export function peerListenTls(url: string): TlsOptions | undefined {
  if (!url.startsWith("https://")) return undefined;
  if (peerListenOptions === undefined) {
    throw new TlsConfigError(`TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url ${url} with HTTPS scheme`);
  }
  return peerListenOptions;
}

/**
 * `http.request` for a peer URL: https with the peer certificate when the URL is https. Every client
 * of the peer port goes through here.
 */
export function peerRequest(url: URL | string, options: RequestOptions, callback?: (res: IncomingMessage) => void): ClientRequest {
  const target = typeof url === "string" ? new URL(url) : url;
  if (target.protocol === "https:") return httpsRequest(target, { ...(peerDialOptions ?? {}), ...options }, callback);
  return httpRequest(target, options, callback);
}

// ---- a member's TLS, from its configuration ----

/** The client TLS info with auto TLS resolved to files (generated under `<data-dir>/fixtures/client`). */
export function resolvedClientTls(config: ServerConfig): TlsInfo | undefined {
  return resolveAutoTls(config.clientTls, "client", config.dataDir, hostsOf([...config.listenClientUrls, ...config.advertiseClientUrls]));
}

/** The peer TLS info with auto TLS resolved to files (generated under `<data-dir>/fixtures/peer`). */
export function resolvedPeerTls(config: ServerConfig): TlsInfo | undefined {
  return resolveAutoTls(config.peerTls, "peer", config.dataDir, hostsOf([...config.listenPeerUrls, ...config.initialAdvertisePeerUrls]));
}

/**
 * Checks and loads a member's TLS before it starts (so a bad certificate fails the start with a clear
 * message, before anything listens): returns the client listeners' TLS options (undefined when no client
 * URL is https) and sets the peer side's. Errors are `TlsConfigError`s naming the flag to fix.
 */
export function prepareMemberTls(config: ServerConfig): { clientListen: TlsOptions | undefined } {
  let clientListen: TlsOptions | undefined;
  const clientTls = resolvedClientTls(config);
  const secureClientUrl = config.listenClientUrls.find((u) => u.startsWith("https://"));
  if (secureClientUrl !== undefined) {
    if (!hasTls(clientTls)) {
      throw new TlsConfigError(
        `TLS key/cert (--cert-file, --key-file) must be provided for client url ${secureClientUrl} with HTTPS scheme`,
      );
    }
    clientListen = serverTlsOptions(clientTls!, "client");
  }
  const peerTls = resolvedPeerTls(config);
  const peerUrls = [...config.listenPeerUrls, ...config.initialAdvertisePeerUrls, ...[...config.initialCluster.values()].flat()];
  const securePeerUrl = config.listenPeerUrls.find((u) => u.startsWith("https://"));
  if (securePeerUrl !== undefined && !hasTls(peerTls)) {
    throw new TlsConfigError(
      `TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url ${securePeerUrl} with HTTPS scheme`,
    );
  }
  if (hasTls(peerTls)) {
    configurePeerTls({ listen: serverTlsOptions(peerTls!, "peer"), dial: dialTlsOptions(peerTls!, "peer") });
  } else if (usesTls(peerUrls)) {
    // Dialling https peers without a certificate of our own: verify them against the system's CAs.
    configurePeerTls({ dial: { rejectUnauthorized: true, checkServerIdentity: () => undefined } });
  } else {
    configurePeerTls(undefined);
  }
  return { clientListen };
}

/**
 * How the JSON gateway dials its own member when the first client URL is https: with the member's client
 * certificate (which `--client-cert-auth` will ask for), trusting the trusted CA — or, without one, the
 * member's own certificate (auto TLS: self-signed) — and not checking the server name, as etcd.
 */
export function gatewayDialCredentials(config: ServerConfig): ChannelCredentials | undefined {
  const first = config.listenClientUrls[0];
  if (first === undefined || !first.startsWith("https://")) return undefined;
  const info = resolvedClientTls(config);
  if (!hasTls(info)) return undefined; // prepareMemberTls reports this when the member starts
  const dial = dialTlsOptions(info!, "client");
  const roots = dial.ca ?? (info!.certFile !== undefined ? readPem(info!.certFile, flagName("client", "cert-file")) : undefined);
  return grpcCredentials.createSsl(roots ?? null, dial.key ?? null, dial.cert ?? null, { checkServerIdentity: () => undefined });
}
