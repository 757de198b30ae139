import { fromBinary, toBinary, type DescMessage, type DescService, type Message, type MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type {
  handleBidiStreamingCall,
  handleClientStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
  MethodDefinition,
  sendUnaryData,
  ServerDuplexStream,
  ServerReadableStream,
  ServerUnaryCall,
  ServerWritableStream,
  ServiceDefinition,
} from "@grpc/grpc-js";

/** The RPCs of a generated service, by their protobuf-es local name (`range`, `hashKV`). */
type MethodsOf<S> = S extends GenService<infer Methods> ? Methods : never;

/** What the generated code says of one RPC: its kind and its two message schemas. */
type MethodShape = GenServiceMethods[string];

/**
 * grpc-js keys a service definition, and looks up handlers, by the RPC's name as the .proto spells it
 * (`Range`, `HashKV`); protobuf-es' local name is that name with its first letter lowered, so
 * capitalizing it gives the key back (`grpcServiceDefinition` checks this for every RPC it builds).
 */
type GrpcMethodName<LocalName extends string> = Capitalize<LocalName>;

/** A service whose generated descriptor lists its RPCs in its type, rather than any descriptor. */
type IsGenerated<S> = string extends keyof MethodsOf<S> ? false : [MethodsOf<S>] extends [never] ? false : true;

/** The grpc-js handler for one RPC: its call shape follows the method kind, its messages the schemas. */
export type GrpcHandler<M extends MethodShape> = M["methodKind"] extends "unary"
  ? handleUnaryCall<MessageShape<M["input"]>, MessageShape<M["output"]>>
  : M["methodKind"] extends "server_streaming"
    ? handleServerStreamingCall<MessageShape<M["input"]>, MessageShape<M["output"]>>
    : M["methodKind"] extends "client_streaming"
      ? handleClientStreamingCall<MessageShape<M["input"]>, MessageShape<M["output"]>>
      : handleBidiStreamingCall<MessageShape<M["input"]>, MessageShape<M["output"]>>;

/**
 * An implementation of a generated service for grpc-js: one handler per RPC, under the name grpc-js
 * looks it up by, typed by the RPC's kind and messages. An RPC the .proto gains is a missing property,
 * so an implementation that lacks it does not compile.
 */
export type GrpcServiceHandlers<S extends DescService> = {
  [K in keyof MethodsOf<S> & string as GrpcMethodName<K>]: GrpcHandler<MethodsOf<S>[K]>;
};

declare const serviceOfDefinition: unique symbol;

/**
 * A grpc-js service definition built from a generated descriptor: per RPC the path, stream flags and
 * (de)serializers of its messages. It remembers its service in its type (a property that exists only
 * for the compiler), so `GrpcServiceRegistrar.addService` can ask for that service's handlers.
 */
export type GrpcServiceDefinition<S extends DescService> =
  IsGenerated<S> extends true
    ? {
        readonly [K in keyof MethodsOf<S> & string as GrpcMethodName<K>]: MethodDefinition<
          MessageShape<MethodsOf<S>[K]["input"]>,
          MessageShape<MethodsOf<S>[K]["output"]>
        >;
      } & { readonly [serviceOfDefinition]?: S }
    : ServiceDefinition;

/**
 * Where services are registered. grpc-js' `Server` is one (its own `addService` is untyped); wrappers
 * that decorate every handler (metrics, access gates) are others.
 */
export interface GrpcServiceRegistrar {
  addService<S extends DescService>(definition: GrpcServiceDefinition<S>, handlers: GrpcServiceHandlers<S>): void;
}

/**
 * Turns a protobuf-es service descriptor into a grpc-js service definition: per method the path, the two
 * stream flags and the (de)serializers. This replaces @grpc/proto-loader, so no .proto is parsed at run time.
 */
export function grpcServiceDefinition<S extends DescService>(service: S): GrpcServiceDefinition<S> {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    if (method.name !== capitalize(method.localName)) {
      // The handler types key RPCs by the capitalized local name; a name protobuf-es had to escape
      // (a reserved word) would register under a key the types do not know.
      throw new Error(`${service.typeName}.${method.name}: local name ${method.localName} does not capitalize to the RPC name`);
    }
    const kind = method.methodKind;
    definition[method.name] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: kind === "client_streaming" || kind === "bidi_streaming",
      responseStream: kind === "server_streaming" || kind === "bidi_streaming",
      requestSerialize: serializer(method.input),
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output),
      responseDeserialize: deserializer(method.output),
      originalName: method.localName,
    };
  }
  // Built from the same descriptor the type is computed from: one entry per RPC, under its name.
  return definition as GrpcServiceDefinition<S>;
}

function capitalize(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/** A call answered through a callback: unary and client-streaming RPCs. */
export type AnsweredCall<Req, Res> = ServerUnaryCall<Req, Res> | ServerReadableStream<Req, Res>;
/** A call answered on the stream itself: server-streaming and bidirectional RPCs. */
export type StreamedCall<Req, Res> = ServerWritableStream<Req, Res> | ServerDuplexStream<Req, Res>;

/** What a decorator is told of the RPC it wraps: its path (`/etcdserverpb.KV/Range`) and stream flags. */
export type GrpcMethodInfo = Pick<MethodDefinition<unknown, unknown>, "path" | "requestStream" | "responseStream">;

/**
 * Decorates handlers whatever their messages: what wraps every RPC of every service (counting calls,
 * refusing them) sees only how a call is answered.
 */
export interface GrpcHandlerDecorator {
  answered<Req, Res, Call extends AnsweredCall<Req, Res>>(
    handler: (call: Call, callback: sendUnaryData<Res>) => void,
    method: GrpcMethodInfo,
  ): (call: Call, callback: sendUnaryData<Res>) => void;
  streamed<Req, Res, Call extends StreamedCall<Req, Res>>(handler: (call: Call) => void, method: GrpcMethodInfo): (call: Call) => void;
}

/** The handlers of a service, each decorated according to its kind (read from the definition). */
export function decorateGrpcHandlers<S extends DescService>(
  definition: GrpcServiceDefinition<S>,
  handlers: GrpcServiceHandlers<S>,
  decorator: GrpcHandlerDecorator,
): GrpcServiceHandlers<S> {
  type AnyMethod = MethodDefinition<unknown, unknown>;
  type AnyHandler = handleUnaryCall<unknown, unknown> | handleServerStreamingCall<unknown, unknown>;
  // The mapped types cannot be walked key by key generically; both objects are read as what every
  // entry is (a method definition, a handler of one of the four kinds) and the result has the same keys.
  const methods = Object.entries(definition as ServiceDefinition) as [string, AnyMethod][];
  const byName = handlers as Record<string, AnyHandler | undefined>;
  const decorated: Record<string, AnyHandler> = {};
  for (const [name, method] of methods) {
    const handler = byName[name];
    if (handler === undefined) continue;
    decorated[name] = method.responseStream
      ? decorator.streamed(handler as handleServerStreamingCall<unknown, unknown>, method)
      : decorator.answered(handler as handleUnaryCall<unknown, unknown>, method);
  }
  return decorated as GrpcServiceHandlers<S>;
}

function serializer(schema: DescMessage): (value: unknown) => Buffer {
  return (value) => {
    // grpc-js hands over what a handler answered (or a client sent), typed by the handler types.
    const bytes = toBinary(schema, value as Message);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer<Desc extends DescMessage>(schema: Desc): (bytes: Buffer) => MessageShape<Desc> {
  return (bytes) => fromBinary(schema, bytes);
}
