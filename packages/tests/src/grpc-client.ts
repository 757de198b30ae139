import { KV, Maintenance, Cluster, grpcServiceDefinition } from "@etcd-ts/api";
import { credentials, makeGenericClientConstructor, type Client, type ServiceError } from "@grpc/grpc-js";
import type { DescService } from "@bufbuild/protobuf";

/** A thin promise-based grpc-js client over the generated descriptors, for tests that speak the wire API directly. */
export type UnaryClient = Client & Record<string, (request: unknown, callback: (error: ServiceError | null, response: unknown) => void) => void>;

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
