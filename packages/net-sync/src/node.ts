/**
 * A libp2p node that speaks the contract's framed request/answer protocols (docs/contract.md,
 * "Streams"): TCP, noise, yamux and identify, as netsync's py-libp2p host. No mDNS, no discovery: a
 * peer is dialled only at the address it was given (a proxy address).
 *
 * Calls: one long-lived stream per peer and protocol; each request carries a `rid` and its answer is
 * matched by it, so answers may come back in any order. Serving: every incoming stream of a handled
 * protocol is answered request by request, each as soon as it is ready, echoing its `rid`; a caller may
 * also send one frame, close its side and read one answer. `{"type": "ping"}` is answered
 * `{"type": "pong"}` on every handled protocol.
 */
import { createLibp2p, type Libp2p, type ServiceFactoryMap } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@libp2p/yamux'
import { identify, type Identify } from '@libp2p/identify'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Ed25519PrivateKey, Stream } from '@libp2p/interface'
import type { FloodSub, FloodSubComponents } from '@libp2p/floodsub'
import { encodeFrame, readFrames, RID, type JsonObject } from './wire.js'

/** The peer could not be reached, or its stream broke. The next call dials afresh. */
export class PeerUnavailableError extends Error {
  override name = 'PeerUnavailableError'
}

/** The peer did not answer in time. The connection and stream are kept: a late answer is not a dead peer. */
export class PeerTimeoutError extends PeerUnavailableError {
  override name = 'PeerTimeoutError'
}

/** Answers one request frame (its `rid` already taken off); a throw becomes `{"cid", "error"}`. */
export type FrameHandler = (request: JsonObject) => Promise<JsonObject> | JsonObject

export interface NodeOptions {
  /** the identity (identity.ts: privateKeyForSeed) */
  privateKey: Ed25519PrivateKey
  /** the listen multiaddr, NETSYNC_LISTEN (`/ip4/0.0.0.0/tcp/4001`) */
  listen: Multiaddr | string
  /** a pubsub service for telemetry (telemetry.ts: telemetryPubsub()), reachable as node.pubsub */
  pubsub?: (components: FloodSubComponents) => FloodSub
}

export interface Peer {
  /** a multiaddr ending in /p2p/<peer id> */
  addr: Multiaddr
}

export interface CallOptions {
  /** the deadline of this call, from its start to its answer */
  timeoutMs: number
  signal?: AbortSignal
}

/** Frames queued for one stream, written in order; waits for the stream to drain when its buffer fills. */
class Writer {
  private tail: Promise<void> = Promise.resolve()

  constructor (private readonly stream: Stream) {}

  send (frame: Uint8Array): Promise<void> {
    this.tail = this.tail.then(async () => {
      if (!this.stream.send(frame)) await this.stream.onDrain()
    })
    return this.tail
  }
}

interface Waiting {
  resolve: (answer: JsonObject) => void
  reject: (err: Error) => void
}

/** The caller's end of one long-lived stream: requests carry a `rid`, answers are matched by it. */
class Channel {
  failure: Error | undefined
  private readonly waiting = new Map<number, Waiting>()
  private readonly writer: Writer
  private nextRid = 0

  constructor (readonly stream: Stream) {
    this.writer = new Writer(stream)
    void this.read()
  }

  private async read (): Promise<void> {
    try {
      for await (const answer of readFrames(this.stream)) {
        const rid = answer[RID]
        delete answer[RID]
        const waiting = typeof rid === 'number' ? this.waiting.get(rid) : undefined
        if (waiting !== undefined) { // else its caller gave up already
          this.waiting.delete(rid as number)
          waiting.resolve(answer)
        }
      }
      this.fail(new Error('the peer closed the stream'))
    } catch (err) {
      this.fail(err as Error)
    }
  }

  fail (err: Error): void {
    this.failure ??= err
    for (const w of this.waiting.values()) w.reject(this.failure)
    this.waiting.clear()
    if (this.stream.status === 'open') this.stream.abort(this.failure)
  }

  async call (payload: JsonObject, signal: AbortSignal): Promise<JsonObject> {
    if (this.failure !== undefined) throw this.failure
    const rid = ++this.nextRid
    const { promise, resolve, reject } = Promise.withResolvers<JsonObject>()
    this.waiting.set(rid, { resolve, reject })
    const onAbort = (): void => {
      this.waiting.delete(rid)
      reject(signal.reason as Error)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      this.writer.send(encodeFrame({ ...payload, [RID]: rid })).catch((err: unknown) => this.fail(err as Error))
      return await promise
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }
}

export class FrameNode {
  private readonly channels = new Map<string, Channel>()
  private readonly opening = new Map<string, Promise<Channel>>()

  constructor (readonly libp2p: Libp2p<{ identify: Identify, pubsub?: FloodSub }>) {}

  /** The telemetry pubsub, when the node was created with one. */
  get pubsub (): FloodSub | undefined {
    return this.libp2p.services.pubsub
  }

  /** This node's peer id (`12D3KooW...`). */
  get peerId (): string {
    return this.libp2p.peerId.toString()
  }

  /** The addresses it listens on, each ending in /p2p/<its peer id>. */
  addresses (): Multiaddr[] {
    return this.libp2p.getMultiaddrs()
  }

  /** Answer every request on each incoming stream of `protocol` with `handler`. */
  async handle (protocol: string, handler: FrameHandler): Promise<void> {
    await this.libp2p.handle(protocol, (stream) => { void serve(stream, handler) }, {
      maxInboundStreams: 1024, // a caller may open a stream per request
      runOnLimitedConnection: false
    })
  }

  /** Is there an open connection to this peer now? */
  isConnected (peer: Peer): boolean {
    return this.libp2p.getConnections(peerIdFromString(peerIdOf(peer.addr))).some((c) => c.status === 'open')
  }

  /** Send `payload` to `peer` on `protocol` and return its answer, within `timeoutMs`. */
  async request (peer: Peer, protocol: string, payload: JsonObject, options: CallOptions): Promise<JsonObject> {
    const deadline = AbortSignal.timeout(options.timeoutMs)
    const signal = options.signal === undefined ? deadline : AbortSignal.any([options.signal, deadline])
    const key = `${peerIdOf(peer.addr)} ${protocol}`
    try {
      const channel = await this.channel(key, peer, protocol, signal)
      return await channel.call(payload, signal)
    } catch (err) {
      if (deadline.aborted) {
        throw new PeerTimeoutError(`${peerIdOf(peer.addr)} did not answer within ${options.timeoutMs} ms`)
      }
      if (options.signal?.aborted === true) throw err
      this.drop(key)
      throw new PeerUnavailableError(`${peerIdOf(peer.addr)}: ${(err as Error).name}: ${(err as Error).message}`)
    }
  }

  private async channel (key: string, peer: Peer, protocol: string, signal: AbortSignal): Promise<Channel> {
    const open = this.channels.get(key)
    if (open !== undefined && open.failure === undefined) return open
    let opening = this.opening.get(key)
    if (opening === undefined) { // one stream per peer and protocol, not one per waiting request
      opening = (async () => {
        // By the given address only: identify's addresses could reach around the proxy.
        const stream = await this.libp2p.dialProtocol(peer.addr, protocol, { signal })
        const channel = new Channel(stream)
        this.channels.set(key, channel)
        return channel
      })().finally(() => this.opening.delete(key))
      this.opening.set(key, opening)
    }
    return await opening
  }

  private drop (key: string): void {
    const channel = this.channels.get(key)
    this.channels.delete(key)
    channel?.fail(new Error('dropped after a failed call'))
  }

  /** Close every connection to `peer` (a later call dials again). */
  async hangUp (peer: Peer): Promise<void> {
    const id = peerIdOf(peer.addr)
    for (const key of [...this.channels.keys()]) if (key.startsWith(`${id} `)) this.drop(key)
    await this.libp2p.hangUp(peerIdFromString(id))
  }

  async stop (): Promise<void> {
    for (const key of [...this.channels.keys()]) this.drop(key)
    await this.libp2p.stop()
  }
}

function peerIdOf (addr: Multiaddr): string {
  const last = addr.getComponents().at(-1)
  if (last?.name !== 'p2p' || last.value === undefined) {
    throw new PeerUnavailableError(`${addr.toString()} does not end in /p2p/<peer id>`)
  }
  return last.value
}

/** Answer the requests of one incoming stream until the caller closes its side, then close ours. */
async function serve (stream: Stream, handler: FrameHandler): Promise<void> {
  const writer = new Writer(stream)
  const answering = new Set<Promise<void>>()
  const answer = async (request: JsonObject): Promise<void> => {
    const rid = request[RID]
    delete request[RID]
    let result: JsonObject
    try {
      result = request.type === 'ping' ? { type: 'pong' } : await handler(request)
    } catch (err) { // one failing request must not break the stream's others
      result = { cid: request.cid ?? null, error: `${(err as Error).name}: ${(err as Error).message}` }
    }
    await writer.send(encodeFrame(rid === undefined ? result : { ...result, [RID]: rid }))
  }
  try {
    for await (const request of readFrames(stream)) {
      const p = answer(request).finally(() => answering.delete(p))
      answering.add(p)
    }
    await Promise.all(answering) // the caller closed its side: send the last answers, then end
    await stream.close()
  } catch (err) { // a bad peer, or a broken stream, must not take the node down
    stream.abort(err as Error)
  }
}

/** A node with the contract's transports, listening on `options.listen`; started. */
export async function createNode (options: NodeOptions): Promise<FrameNode> {
  const services: ServiceFactoryMap<{ identify: Identify, pubsub?: FloodSub }> = { identify: identify() }
  if (options.pubsub !== undefined) services.pubsub = options.pubsub
  const libp2p = await createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: [multiaddr(options.listen).toString()] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services
  })
  return new FrameNode(libp2p)
}
