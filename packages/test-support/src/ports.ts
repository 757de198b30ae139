import { createServer } from "node:net";

/**
 * Ports a test must never take even if the kernel offers them: etcd's defaults (a developer's own etcd
 * may be running) and the range the conformance harness hands its targets.
 */
function isReserved(port: number): boolean {
  return port === 2379 || port === 2380 || (port >= 24790 && port <= 24899);
}

/**
 * Ports this process has handed out already. The kernel may offer a just-released port again, and a test
 * that asks for a client and a peer port in a row must not get the same one twice.
 */
const handedOut = new Set<number>();

function kernelPick(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await kernelPick();
    if (isReserved(port) || handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}
