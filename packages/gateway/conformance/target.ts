/**
 * A conformance-harness target that exercises this gateway alone (`../../shared/conformance/run.sh`):
 * a real etcd 3.4 listening on a private port, behind `{port}` where HTTP/2 (gRPC) connections are piped to
 * etcd and HTTP/1.1 ones go to @etcd-ts/gateway dialing that etcd. etcd advertises `{port}`, so member lists
 * match the reference.
 *
 *   run.sh --only gw --target-cwd packages/gateway \
 *     --target-cmd 'exec node --conditions=source --import tsx conformance/target.ts {port} {peer_port} {data_dir}'
 */
import { spawn } from "node:child_process";
import { createServer as createHttpServer } from "node:http";
import { connect, createServer, type AddressInfo } from "node:net";
import { createGateway } from "../src/index.js";

const [port, peerPort, dataDir] = process.argv.slice(2);
if (port === undefined || peerPort === undefined || dataDir === undefined) {
  console.error("usage: target.ts PORT PEER_PORT DATA_DIR");
  process.exit(2);
}

const internalPort = await new Promise<number>((resolve) => {
  const probe = createServer().listen(0, "127.0.0.1", () => {
    const bound = (probe.address() as AddressInfo).port;
    probe.close(() => resolve(bound));
  });
});
const peer = `http://127.0.0.1:${peerPort}`;
const etcd = spawn(
  "etcd",
  [
    "--name",
    "conf",
    "--data-dir",
    dataDir,
    "--listen-client-urls",
    `http://127.0.0.1:${internalPort}`,
    "--advertise-client-urls",
    `http://127.0.0.1:${port}`,
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
  ],
  { stdio: "inherit" },
);
etcd.once("exit", (code) => process.exit(code ?? 1));

const gateway = createGateway({ target: `127.0.0.1:${internalPort}` });
const http1 = createHttpServer((request, response) => gateway.handle(request, response));
http1.on("upgrade", (request, socket, head: Buffer) => gateway.handleUpgrade(request, socket, head));

createServer((socket) => {
  socket.once("data", (first: Buffer) => {
    socket.pause();
    if (first.subarray(0, 4).toString() === "PRI ") {
      const upstream = connect(internalPort, "127.0.0.1", () => {
        upstream.write(first);
        socket.pipe(upstream);
        upstream.pipe(socket);
        socket.resume();
      });
      const teardown = (): void => {
        socket.destroy();
        upstream.destroy();
      };
      upstream.on("error", teardown);
      socket.on("error", teardown);
      socket.on("close", teardown);
      upstream.on("close", teardown);
    } else {
      socket.unshift(first);
      http1.emit("connection", socket);
      socket.resume();
    }
  });
}).listen(Number(port), "127.0.0.1");

const stop = (): void => {
  gateway.close();
  etcd.kill("SIGTERM");
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
