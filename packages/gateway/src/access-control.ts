/**
 * etcd's accessController in front of every client-port HTTP request: the `--host-whitelist` check
 * against DNS rebinding (plain HTTP only) and the CORS headers of `--cors`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { hostnameOf } from "./go-http.js";

export class AccessController {
  private readonly corsAll: boolean;
  private readonly corsOrigins: ReadonlySet<string>;
  private readonly hostsAll: boolean;
  private readonly hosts: ReadonlySet<string>;

  /** An empty list or one containing `*` allows everything, as etcd's sets do. */
  constructor(cors: readonly string[], hostWhitelist: readonly string[]) {
    this.corsAll = cors.length === 0 || cors.includes("*");
    this.corsOrigins = new Set(cors);
    this.hostsAll = hostWhitelist.length === 0 || hostWhitelist.includes("*");
    this.hosts = new Set(hostWhitelist);
  }

  hostAllowed(hostHeader: string): boolean {
    if (this.hostsAll) return true;
    return this.hosts.has(hostnameOf(hostHeader));
  }

  /** etcd's addCORSHeader, for every answer when the origin is allowed. */
  addCorsHeaders(request: IncomingMessage, response: ServerResponse): void {
    let allowOrigin: string | undefined;
    if (this.corsAll) allowOrigin = "*";
    else {
      const origin = request.headers.origin ?? "";
      if (this.corsOrigins.has(origin)) allowOrigin = origin;
    }
    if (allowOrigin === undefined) return;
    response.setHeader("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE");
    response.setHeader("Access-Control-Allow-Origin", allowOrigin);
    response.setHeader("Access-Control-Allow-Headers", "accept, content-type, authorization");
  }
}

/** etcd's errCVE20185702 text. */
export function hostRejectedMessage(host: string): string {
  return `
etcd received your request, but the Host header was unrecognized.

To fix this, choose one of the following options:
- Enable TLS, then any HTTPS request will be allowed.
- Add the hostname you want to use to the whitelist in settings.
  - e.g. etcd --host-whitelist ${JSON.stringify(host)}

This requirement has been added to help prevent "DNS Rebinding" attacks (CVE-2018-5702).
`;
}
