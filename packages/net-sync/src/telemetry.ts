/**
 * Peer-health telemetry over libp2p pubsub (docs/contract.md, "Telemetry"): floodsub on the topic
 * `root-solar/telemetry/1.0.0`, as netsync (gossipsub's IP-diversity checks trip on peers that all sit
 * behind one proxy address).
 *
 * The known hole, and how this package gets past it: js-libp2p's floodsub (11.0.28) checks a signed
 * message's signature over a seqno it rebuilt from a bigint, which drops leading zero bytes; py-libp2p
 * signs its 8-byte seqno as sent, leading zeros and all, so every telemetry message from a netsync agent
 * fails with "StrictSigning: Invalid message signature" (js-libp2p PR #3626, open). `telemetryPubsub()` is
 * floodsub with strict signing kept, whose check tries the seqno as the 8 bytes the contract's peers
 * send when the stock check fails: a message is accepted only with a valid signature by its sender.
 */
import { floodsub, type FloodSub, type FloodSubComponents, type FloodSubInit, type Message, type SignedMessage } from '@libp2p/floodsub'
import type { PeerId } from '@libp2p/interface'

export const TELEMETRY_TOPIC = 'root-solar/telemetry/1.0.0'
export const SUMMARY_SUBJECT = 'root.solar.telemetry.peer-health'

const SIGN_PREFIX = new TextEncoder().encode('libp2p-pubsub:')

/** The 8-byte big-endian seqno, leading zeros kept, as py-libp2p (and js-libp2p's own randomSeqno) send it. */
export function seqnoBytes (seqno: bigint): Uint8Array {
  const out = new Uint8Array(8)
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, seqno), false)
  return out
}

interface Internals {
  validate: (from: PeerId, message: Message) => Promise<void>
  encodeMessage: (rpc: object) => Uint8Array
  topicValidators: Map<string, (from: PeerId, message: Message) => unknown>
}

/** Does `message` carry its sender's signature over the seqno's 8 bytes? */
async function signedOverEightBytes (pubsub: Internals, message: SignedMessage): Promise<boolean> {
  const body = pubsub.encodeMessage({
    from: message.from.toMultihash().bytes,
    data: message.data,
    sequenceNumber: seqnoBytes(message.sequenceNumber),
    topic: message.topic
  })
  const bytes = new Uint8Array(SIGN_PREFIX.length + body.length)
  bytes.set(SIGN_PREFIX)
  bytes.set(body, SIGN_PREFIX.length)
  return await message.key.verify(bytes, message.signature)
}

/**
 * floodsub (strict signing) that also accepts py-libp2p's correctly signed messages: a libp2p service
 * factory, `services: { pubsub: telemetryPubsub() }`.
 */
export function telemetryPubsub (init: FloodSubInit = {}): (components: FloodSubComponents) => FloodSub {
  const make = floodsub({ ...init, globalSignaturePolicy: 'StrictSign' })
  return (components) => {
    const pubsub = make(components)
    const internals = pubsub as unknown as Internals
    const stock = internals.validate.bind(pubsub)
    internals.validate = async (from, message) => {
      try {
        await stock(from, message)
        return
      } catch (err) {
        if (message.type !== 'signed' || !/Invalid message signature/.test((err as Error).message)) throw err
        if (!(await signedOverEightBytes(internals, message))) throw err
      }
      // the stock check threw before the topic's validator ran: run it as it would have
      const validator = internals.topicValidators.get(message.topic)
      if (validator !== undefined) {
        const result = await validator(from, message)
        if (result === 'reject' || result === 'ignore') throw new Error('Message validation failed')
      }
    }
    return pubsub
  }
}
