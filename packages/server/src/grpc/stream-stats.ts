/**
 * Live counts of the gRPC streams a member serves and of what they hold, for `/metrics` (read when
 * scraped). Every per-stream queue is bounded; these show how full they are across all streams.
 */
export class GrpcStreamStats {
  /** LeaseKeepAlive streams open now. */
  keepAliveStreams = 0;
  /** Keep-alive requests read from their streams and not answered yet, over all streams. */
  keepAlivesPending = 0;
  /** Watch creates refused because their stream held its maximum number of watchers. */
  watchCreatesRefused = 0;
  private readonly watchStreams = new Set<{ readonly pending: number; readonly watchCount: number }>();

  /** Registers an open watch stream; returns the function that unregisters it. */
  addWatchStream(stream: { readonly pending: number; readonly watchCount: number }): () => void {
    this.watchStreams.add(stream);
    return () => this.watchStreams.delete(stream);
  }

  get watchStreamCount(): number {
    return this.watchStreams.size;
  }

  /** Watchers over all watch streams. */
  watchers(): number {
    let n = 0;
    for (const stream of this.watchStreams) n += stream.watchCount;
    return n;
  }

  /** Responses queued on watch streams for their clients, over all streams. */
  watchQueuedResponses(): number {
    let n = 0;
    for (const stream of this.watchStreams) n += stream.pending;
    return n;
  }
}
