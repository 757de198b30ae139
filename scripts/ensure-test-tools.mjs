#!/usr/bin/env node
// The end-to-end tests drive etcd-ts with the real etcdctl 3.4 and compare against a real etcd 3.4,
// both from Debian's packages. Install them when they are missing (the test machine runs as root).
import { spawnSync } from "node:child_process";

function has(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}
const missing = ["etcd", "etcdctl", "jq", "curl"].filter((c) => !has(c));
if (missing.length === 0) process.exit(0);
console.log(`installing test tools (missing: ${missing.join(", ")})`);
const sudo = process.getuid && process.getuid() !== 0 ? "sudo " : "";
const script = `${sudo}apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${sudo}apt-get install -y -qq etcd-server etcd-client jq curl`;
const r = spawnSync("sh", ["-c", script], { stdio: "inherit" });
if (r.status !== 0) {
  console.error(
    "could not install etcd-server/etcd-client; install them by hand (Debian: apt-get install etcd-server etcd-client jq curl)",
  );
  process.exit(1);
}
// Debian's etcd-server package may start a system etcd on 2379; tests choose their own ports, but stop it anyway.
spawnSync("sh", ["-c", "pkill -x etcd || true"], { stdio: "ignore" });
