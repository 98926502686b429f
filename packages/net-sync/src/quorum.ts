/**
 * The intent's quorum over `/root-solar/sentiment/1.0.0` (docs/contract.md, "Voting rule" and
 * "Decision"): the peer side (Votes, serveVotes) and the proposer's side (gatherQuorum), with netsync's
 * reasons word for word, so an abort reads the same whichever implementation wrote it.
 */
import { SENTIMENT_PROTOCOL, isJsonInteger, toJson, type JsonObject, type Vote } from './wire.js'
import { PeerTimeoutError, type FrameNode, type Peer } from './node.js'

/** Votes kept: a proposal is re-sought only while its intent is undecided (docs/contract.md, "Resources"). */
export const VOTES_KEPT = 20_000

export type Verdict = { agree: true } | { agree: false, reason: string }

/**
 * The voting rule: agree when `value` is an integer within [valueMin, valueMax] and no different
 * (key, value) was agreed to under the same cid. What was agreed to is kept in memory only, the last
 * `kept` cids.
 */
export class Votes {
  private readonly agreed = new Map<string, string>()

  constructor (readonly valueMin: bigint, readonly valueMax: bigint, readonly kept = VOTES_KEPT) {}

  /** Vote on `value` (already known to be an integer, or `undefined` when it is not one). */
  vote (cid: string, key: unknown, value: bigint | number | undefined): Verdict {
    if (value === undefined) return { agree: false, reason: 'value is not an integer' }
    const v = typeof value === 'bigint' ? value : BigInt(value)
    if (v < this.valueMin || v > this.valueMax) {
      return { agree: false, reason: `value outside [${this.valueMin}, ${this.valueMax}]` }
    }
    const proposal = toJson([key ?? null, v])
    const prior = this.agreed.get(cid)
    if (prior !== undefined && prior !== proposal) {
      return { agree: false, reason: 'agreed to a different proposal under this cid' }
    }
    this.agreed.set(cid, proposal) // a cid keeps its first place: the oldest is forgotten first, as in netsync
    if (this.agreed.size > this.kept) this.agreed.delete(this.agreed.keys().next().value as string)
    return { agree: true }
  }

  /** The answer frame to a propose frame from a peer. */
  answer (request: JsonObject, voter: string): Vote {
    const cid = typeof request.cid === 'string' ? request.cid : toJson(request.cid ?? null)
    const value = isJsonInteger(request, 'value') ? request.value as bigint | number : undefined
    const verdict = this.vote(cid, request.key, value)
    return verdict.agree
      ? { cid, vote: 'agree', voter }
      : { cid, vote: 'disagree', voter, reason: verdict.reason }
  }
}

/** Answer propose frames on `node` with `votes`, as the agent named `voter`. */
export async function serveVotes (node: FrameNode, votes: Votes, voter: string): Promise<void> {
  await node.handle(SENTIMENT_PROTOCOL, (request) => ({ ...votes.answer(request, voter) }))
}

export interface Proposal {
  cid: string
  key: string
  value: bigint | number
  /** this agent's name (the proposer) */
  proposer: string
}

export interface QuorumOptions {
  /** NETSYNC_QUORUM: agreements needed, the proposer's own included */
  quorum: number
  /** NETSYNC_INTENT_TIMEOUT_MS */
  timeoutMs: number
  /** the other agents, by name (NETSYNC_PEERS) */
  peers: ReadonlyArray<Peer & { name: string }>
  /** called with each peer's reachability as its answer (or failure) comes in */
  onPeer?: (name: string, reachable: boolean) => void
}

export interface QuorumResult {
  decided: boolean
  /** why not, in netsync's words ('' when decided) */
  reason: string
  agree: number
  need: number
}

/**
 * Seek the quorum for `proposal`: the proposer votes by its own rule, every peer is asked at once; decided
 * as soon as `quorum` agreed, aborted once agreement can no longer reach it or the timeout passed. A peer
 * that did not answer in time is not counted against (the timeout decides and says so); one that is
 * unreachable is. Requests still out when the decision falls are left to finish, so each peer's vote is
 * recorded as netsync's are.
 */
export async function gatherQuorum (node: FrameNode, votes: Votes, proposal: Proposal, options: QuorumOptions): Promise<QuorumResult> {
  const need = options.quorum
  const total = options.peers.length + 1
  const own = votes.vote(proposal.cid, proposal.key, proposal.value)
  let agree = own.agree ? 1 : 0
  let against = own.agree ? 0 : 1
  const reasons = own.agree ? [] : [`${proposal.proposer}: ${own.reason}`]
  const { promise: settled, resolve } = Promise.withResolvers<void>()
  const settle = (): void => {
    if (agree >= need || total - against < need) resolve()
  }
  const payload: JsonObject = { type: 'propose', ...proposal }
  for (const peer of options.peers) {
    void (async () => {
      try {
        const ans = await node.request(peer, SENTIMENT_PROTOCOL, payload, { timeoutMs: options.timeoutMs })
        options.onPeer?.(peer.name, true)
        if (ans.vote === 'agree') {
          agree++
        } else {
          against++
          reasons.push(`${peer.name}: ${String(ans.reason ?? ans.error ?? 'disagreed')}`)
        }
      } catch (err) {
        options.onPeer?.(peer.name, false)
        if (!(err instanceof PeerTimeoutError)) {
          against++
          reasons.push(`${peer.name}: unreachable (${(err as Error).message})`)
        }
      }
      settle()
    })()
  }
  settle()
  let timer: NodeJS.Timeout | undefined
  const timedOut = await Promise.race([
    settled.then(() => false),
    new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), options.timeoutMs) })
  ])
  clearTimeout(timer)
  if (agree >= need) return { decided: true, reason: '', agree, need }
  if (timedOut) {
    return { decided: false, reason: `no quorum within ${options.timeoutMs} ms (${agree}/${need} agreed)`, agree, need }
  }
  return { decided: false, reason: `quorum impossible (${agree}/${need} agreed): ${reasons.join('; ')}`, agree, need }
}
