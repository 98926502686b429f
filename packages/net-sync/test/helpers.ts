/** What the tests share: the checkout's Python (netsync's reference behaviour) and small waits. */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** The project's checkout (packages/net-sync/dist/test -> four levels up). */
export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url))
/** The checkout's venv, where netsync and py-libp2p are installed (make venv). */
export const PYTHON = `${ROOT}.venv/bin/python`

/** Run `code` with netsync importable; `input` arrives as JSON in sys.argv[1]; stdout is returned. */
export function python (code: string, input: unknown = null): string {
  return execFileSync(PYTHON, ['-c', code, JSON.stringify(input)], { cwd: ROOT, encoding: 'utf8' })
}
