/**
 * The agent's connections to its peers and its orchestrator, kept open (netsync/p2p.py keep_connected):
 * the first intent after a start or a heal must not pay the dial, the noise handshake and the protocol's
 * negotiation inside its 80 ms. Each peer is pinged on its protocol about every second (which dials it
 * when there is no connection); a ping unanswered within the timeout (a blackholed link, a paused peer)
 * hangs the connection up, so the next ping dials afresh. Waits are jittered per peer: two agents that
 * lost each other at the same moment would otherwise redial in lockstep and fail each other's handshake.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { FrameNode, Peer } from './node.js'

export interface KeptPeer extends Peer {
  name: string
  /** the protocol its ping goes on: sentiment for an agent, decision for the orchestrator */
  protocol: string
}

export interface KeepOptions {
  /** the wait between two pings of a connected peer is about twice this, of a lost one about this */
  intervalMs?: number
  /** a ping's deadline, dial included */
  timeoutMs?: number
  signal: AbortSignal
  /** each ping's outcome */
  onPing?: (peer: KeptPeer, ok: boolean) => void
}

/** The ping netsync's agent sends: a cid that names no intent. */
export const PING = { type: 'ping', cid: '-' }

/** Keep every peer connected until `signal` aborts; resolves then. */
export async function keepConnected (node: FrameNode, peers: readonly KeptPeer[], options: KeepOptions): Promise<void> {
  const interval = options.intervalMs ?? 500
  const timeoutMs = options.timeoutMs ?? 2000
  const { signal } = options
  const keep = async (peer: KeptPeer): Promise<void> => {
    while (!signal.aborted) {
      let ok = true
      try {
        await node.request(peer, peer.protocol, PING, { timeoutMs, signal })
      } catch {
        ok = false
      }
      if (signal.aborted) return
      options.onPing?.(peer, ok)
      if (!ok) await node.hangUp(peer).catch(() => {})
      const wait = ok ? 2 * interval * (0.5 + Math.random()) : interval * (0.5 + 1.5 * Math.random())
      await sleep(wait, undefined, { signal }).catch(() => {})
    }
  }
  await Promise.all(peers.map(keep))
}
