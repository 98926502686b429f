/**
 * The contract's identity (docs/contract.md, NETSYNC_IDENTITY_SEED): the libp2p key is the Ed25519 key
 * whose 32-byte seed is sha256 of the seed string's UTF-8 bytes, so every peer id is known before any
 * node starts, and a node of either implementation started with the same seed has the same peer id.
 */
import { createHash } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'

/** sha256(UTF-8 bytes of `seed`): the Ed25519 seed, as netsync's key_pair_for_seed computes it. */
export function ed25519SeedOf (seed: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(seed, 'utf8').digest())
}

/** The private key of the node started with NETSYNC_IDENTITY_SEED=`seed`. */
export async function privateKeyForSeed (seed: string): Promise<Ed25519PrivateKey> {
  return generateKeyPairFromSeed('Ed25519', ed25519SeedOf(seed))
}

/** The peer id of the node started with NETSYNC_IDENTITY_SEED=`seed`. */
export async function peerIdForSeed (seed: string): Promise<PeerId> {
  return peerIdFromPrivateKey(await privateKeyForSeed(seed))
}
