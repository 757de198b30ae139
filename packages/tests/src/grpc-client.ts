import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { KV, Maintenance, Cluster, RangeRequestSchema, grpcServiceDefinition, type RangeResponse } from "@etcd-ts/api";
import { credentials, makeGenericClientConstructor, type Client, type ServiceError } from "@grpc/grpc-js";
import type { DescService } from "@bufbuild/protobuf";

/** A thin promise-based grpc-js client over the generated descriptors, for tests that speak the wire API directly. */
export type UnaryClient = Client &
  Record<string, (request: unknown, callback: (error: ServiceError | null, response: unknown) => void) => void>;

export function makeClient(service: DescService, endpoint: string): UnaryClient {
  const Ctor = makeGenericClientConstructor(grpcServiceDefinition(service), service.name);
  return new Ctor(endpoint, credentials.createInsecure()) as unknown as UnaryClient;
}

export function call<Res>(client: UnaryClient, method: string, request: unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = client[method];
    if (typeof fn !== "function") {
      reject(new Error(`no method ${method}`));
      return;
    }
    fn.call(client, request, (error, response) => (error ? reject(error) : resolve(response as Res)));
  });
}

export const services = { KV, Maintenance, Cluster };

/**
 * Asserts every acknowledged put is in `[key, rangeEnd)` with its value, at the revision its answer
 * reported; returns the range, for its header.
 */
export async function assertAcknowledgedPresent(
  reader: UnaryClient,
  key: string,
  rangeEnd: string,
  acknowledged: ReadonlyMap<string, { value: string; revision: bigint }>,
  when: string,
): Promise<RangeResponse> {
  const all = await call<RangeResponse>(
    reader,
    "Range",
    create(RangeRequestSchema, { key: Buffer.from(key), rangeEnd: Buffer.from(rangeEnd) }),
  );
  const found = new Map(all.kvs.map((kv) => [Buffer.from(kv.key).toString(), kv]));
  let missing = 0;
  for (const [k, ack] of acknowledged) {
    const kv = found.get(k);
    if (kv === undefined) {
      missing++;
      continue;
    }
    assert.equal(Buffer.from(kv.value).toString(), ack.value);
    assert.equal(kv.modRevision, ack.revision, `${k} is at the revision its put reported`);
  }
  assert.equal(missing, 0, `${missing} of ${acknowledged.size} acknowledged puts are missing ${when}`);
  return all;
}
