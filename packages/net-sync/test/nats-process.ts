/**
 * nats-server (the project's build, as helpers.ts startNatsServer finds it) on a fixed port and store, so
 * a test can stop it and start it again as the same server, or pause it (SIGSTOP) as a stalled NATS.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, python, until } from './helpers.js'

/** nats-server on a fixed port and store, so it can be stopped and started again as the same server. */
export class Nats {
  private proc: ChildProcess | undefined
  readonly store = mkdtempSync(join(tmpdir(), 'net-sync-orch-nats-'))
  readonly binary = python('from harness.images import Images\nprint(Images("offline").binary("nats-server"))').trim()
  constructor (readonly port: number, readonly monitor: number) {}

  /** A server on free loopback ports, started. */
  static async launch (): Promise<Nats> {
    const nats = new Nats(await freePort(), await freePort())
    await nats.start()
    return nats
  }
  get url (): string { return `nats://127.0.0.1:${this.port}` }

  async start (): Promise<void> {
    this.proc = spawn(this.binary, ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.store, '-m', String(this.monitor)],
      { stdio: 'ignore' })
    await until('nats-server /healthz 200', async () => (await fetch(`http://127.0.0.1:${this.monitor}/healthz`)).status === 200)
  }

  async stop (): Promise<void> {
    const proc = this.proc
    if (proc === undefined || proc.exitCode !== null) return
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill('SIGKILL')
    await exited
  }

  /** SIGSTOP (true) or SIGCONT (false): a server that stops answering without closing its connections. */
  pause (paused: boolean): void {
    this.proc?.kill(paused ? 'SIGSTOP' : 'SIGCONT')
  }

  /** Stops it and removes its store. */
  async remove (): Promise<void> {
    await this.stop()
    rmSync(this.store, { recursive: true, force: true })
  }
}


