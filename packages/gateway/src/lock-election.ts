/**
 * etcd's v3lock and v3election services (etcdserver/api/v3lock/v3lockpb/v3lock.proto and
 * etcdserver/api/v3election/v3electionpb/v3election.proto, 3.4), which etcd's gateway also mounts under
 * /v3/lock and /v3/election. `@etcd-ts/api` does not carry these two files, so their descriptors are
 * declared here — schema only, field for field as etcd numbers them — on top of the api's
 * ResponseHeader and KeyValue.
 */
import { createFileRegistry, create, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import {
  FieldDescriptorProtoSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { file_etcd_api_etcdserverpb_rpc, file_etcd_api_mvccpb_kv } from "@etcd-ts/api";

type FieldSpec = readonly [name: string, number: number, type: "bytes" | "int64" | `.${string}`];

function field([name, number, type]: FieldSpec): MessageInitShape<typeof FieldDescriptorProtoSchema> {
  const base = { name, number, label: FieldDescriptorProto_Label.OPTIONAL, jsonName: lowerCamel(name) };
  if (type === "bytes") return { ...base, type: FieldDescriptorProto_Type.BYTES };
  if (type === "int64") return { ...base, type: FieldDescriptorProto_Type.INT64 };
  return { ...base, type: FieldDescriptorProto_Type.MESSAGE, typeName: type };
}

function lowerCamel(name: string): string {
  return name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

const DEPENDENCIES: Record<string, typeof file_etcd_api_etcdserverpb_rpc> = {
  "etcd/api/etcdserverpb/rpc.proto": file_etcd_api_etcdserverpb_rpc,
  "etcd/api/mvccpb/kv.proto": file_etcd_api_mvccpb_kv,
};

function service(
  fileName: string,
  pkg: string,
  dependencies: readonly string[],
  messages: Readonly<Record<string, readonly FieldSpec[]>>,
  serviceName: string,
  methods: ReadonlyArray<readonly [name: string, input: string, output: string, serverStreaming?: boolean]>,
): DescService {
  const file = create(FileDescriptorProtoSchema, {
    name: fileName,
    package: pkg,
    syntax: "proto3",
    dependency: [...dependencies],
    messageType: Object.entries(messages).map(([name, fields]) => ({ name, field: fields.map(field) })),
    service: [
      {
        name: serviceName,
        method: methods.map(([name, input, output, serverStreaming]) => ({
          name,
          inputType: `.${pkg}.${input}`,
          outputType: `.${pkg}.${output}`,
          serverStreaming: serverStreaming === true,
        })),
      },
    ],
  });
  const registry = createFileRegistry(file, (name) => DEPENDENCIES[name]);
  const desc = registry.getService(`${pkg}.${serviceName}`);
  if (desc === undefined) throw new Error(`${pkg}.${serviceName} missing from its own descriptor`);
  return desc;
}

const HEADER = ".etcdserverpb.ResponseHeader";

/** v3lockpb.Lock: Lock, Unlock. */
export const Lock: DescService = service(
  "etcd/api/v3lockpb/v3lock.proto",
  "v3lockpb",
  ["etcd/api/etcdserverpb/rpc.proto"],
  {
    LockRequest: [
      ["name", 1, "bytes"],
      ["lease", 2, "int64"],
    ],
    LockResponse: [
      ["header", 1, HEADER],
      ["key", 2, "bytes"],
    ],
    UnlockRequest: [["key", 1, "bytes"]],
    UnlockResponse: [["header", 1, HEADER]],
  },
  "Lock",
  [
    ["Lock", "LockRequest", "LockResponse"],
    ["Unlock", "UnlockRequest", "UnlockResponse"],
  ],
);

/** v3electionpb.Election: Campaign, Proclaim, Leader, Observe (server stream), Resign. */
export const Election: DescService = service(
  "etcd/api/v3electionpb/v3election.proto",
  "v3electionpb",
  ["etcd/api/etcdserverpb/rpc.proto", "etcd/api/mvccpb/kv.proto"],
  {
    CampaignRequest: [
      ["name", 1, "bytes"],
      ["lease", 2, "int64"],
      ["value", 3, "bytes"],
    ],
    CampaignResponse: [
      ["header", 1, HEADER],
      ["leader", 2, ".v3electionpb.LeaderKey"],
    ],
    LeaderKey: [
      ["name", 1, "bytes"],
      ["key", 2, "bytes"],
      ["rev", 3, "int64"],
      ["lease", 4, "int64"],
    ],
    LeaderRequest: [["name", 1, "bytes"]],
    LeaderResponse: [
      ["header", 1, HEADER],
      ["kv", 2, ".mvccpb.KeyValue"],
    ],
    ResignRequest: [["leader", 1, ".v3electionpb.LeaderKey"]],
    ResignResponse: [["header", 1, HEADER]],
    ProclaimRequest: [
      ["leader", 1, ".v3electionpb.LeaderKey"],
      ["value", 2, "bytes"],
    ],
    ProclaimResponse: [["header", 1, HEADER]],
  },
  "Election",
  [
    ["Campaign", "CampaignRequest", "CampaignResponse"],
    ["Proclaim", "ProclaimRequest", "ProclaimResponse"],
    ["Leader", "LeaderRequest", "LeaderResponse"],
    ["Observe", "LeaderRequest", "LeaderResponse", true],
    ["Resign", "ResignRequest", "ResignResponse"],
  ],
);
