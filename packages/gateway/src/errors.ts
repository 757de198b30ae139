/**
 * The one error class of @etcd-ts/gateway. `code` says what went wrong:
 * - `Refused`: a request refused before or instead of a gRPC call; `grpcCode` is the gRPC code
 *   grpc-gateway would report.
 * - `JsonSyntax`: a body that is not JSON, in Go encoding/json's words.
 * - `JsonTooLarge`: a JSON value longer than the gateway reads.
 * - `JsonPb`: a JSON value that does not decode into the request message, in jsonpb's words.
 * - `WebSocketProtocol`: a websocket frame that breaks the protocol; `closeCode` is the close code to
 *   answer with.
 *
 * `isGatewayError(e, code)` compares the `name`, not the prototype, so it also recognises errors thrown by
 * another installed copy of the package.
 */
export type GatewayErrorCode = "Refused" | "JsonSyntax" | "JsonTooLarge" | "JsonPb" | "WebSocketProtocol";

/** RFC 6455's close code for a protocol error, what a `WebSocketProtocol` error answers unless told. */
const CLOSE_PROTOCOL_ERROR = 1002;
/** gRPC's UNKNOWN, the code of an error that names none. */
const GRPC_UNKNOWN = 2;

export class GatewayError extends Error {
  override readonly name = "GatewayError";
  /** For `Refused`: the gRPC code grpc-gateway would report (UNKNOWN for the other codes). */
  readonly grpcCode: number;
  /** For `WebSocketProtocol`: 1002 (protocol error) unless the message was too big (1009). */
  readonly closeCode: number;
  constructor(
    readonly code: GatewayErrorCode,
    message: string,
    options?: { cause?: unknown; grpcCode?: number; closeCode?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.grpcCode = options?.grpcCode ?? GRPC_UNKNOWN;
    this.closeCode = options?.closeCode ?? CLOSE_PROTOCOL_ERROR;
  }
}

export function isGatewayError(e: unknown, code?: GatewayErrorCode): e is GatewayError {
  return e instanceof Error && e.name === "GatewayError" && (code === undefined || (e as GatewayError).code === code);
}

/** A body refused as JSON or as the request message: Go's text for it is what the client is told. */
export function isJsonDecodeError(e: unknown): e is GatewayError {
  return isGatewayError(e, "JsonSyntax") || isGatewayError(e, "JsonPb");
}
