import type { Gateway } from "@etcd-ts/gateway";
import type { GaugeSource } from "@etcd-ts/server";

/**
 * The JSON gateway's `stats()` as gauges on the member's `/metrics`: what the gateway holds now, each
 * part with its bound in the help text. Read at scrape time.
 */
export function gatewayGauges(gateway: Pick<Gateway, "stats">): GaugeSource[] {
  return [
    {
      name: "etcd_ts_gateway_calls",
      help: "gRPC calls the JSON gateway has in flight. Each request body is bounded by the gRPC request limit while it is read (larger ones are answered 429); a call is cancelled when its HTTP client leaves.",
      read: () => gateway.stats().calls,
    },
    {
      name: "etcd_ts_gateway_streams",
      help: "Streaming answers the JSON gateway has open (watch, lease keep-alive, snapshot, election observe; plain HTTP or websocket). Each is flow-controlled: its gRPC call pauses while the client does not read.",
      read: () => gateway.stats().streams,
    },
    {
      name: "etcd_ts_gateway_buffered_bytes",
      help: "Bytes the JSON gateway has written to open streaming answers that clients have not read yet. Bounded per stream at about one message past the socket's high-water mark.",
      read: () => gateway.stats().bufferedBytes,
    },
  ];
}
