import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Cluster, MemberUpdateRequestSchema, grpcServiceDefinition } from "@etcd-ts/api";
import { credentials, makeGenericClientConstructor, type ServiceError } from "@grpc/grpc-js";
import { recordingLogger, startFuzzMember } from "../testing/fuzz-member.js";

test(
  "concurrent membership changes through one member all complete (raft takes one unapplied conf change at a time)",
  { timeout: 60_000 },
  async (t) => {
    const fuzz = await startFuzzMember(recordingLogger());
    t.after(() => fuzz.stop());
    const Ctor = makeGenericClientConstructor(grpcServiceDefinition(Cluster), "Cluster");
    const client = new Ctor(fuzz.clientAddress, credentials.createInsecure()) as unknown as Record<
      string,
      (r: unknown, cb: (e: ServiceError | null) => void) => void
    > & { close(): void };
    t.after(() => client.close());
    const self = fuzz.member.server.memberId;
    const results = await Promise.all(
      Array.from(
        { length: 6 },
        () =>
          new Promise<string>((resolve) =>
            client.MemberUpdate!(create(MemberUpdateRequestSchema, { ID: self, peerURLs: [fuzz.peerUrl] }), (error) =>
              resolve(error ? error.details : "ok"),
            ),
          ),
      ),
    );
    // Without the queue, the ones raft dropped waited for the request timeout: "request timed out".
    assert.deepEqual(results, Array(6).fill("ok"));
  },
);
