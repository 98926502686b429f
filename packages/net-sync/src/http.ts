/**
 * The roles' HTTP server (docs/contract.md, "Agent HTTP API" and "Health"), on node:http, shared by every
 * role so each answers alike: JSON bodies, a body read whole within MAX_BODY bytes and BODY_TIMEOUT_MS
 * (else 413 / 408 naming the field `body`), `Connection: close` on any answer sent before the request's
 * body was read whole, a handler that throws answered `500 {"error": "internal error: <type>"}` and
 * logged, and 404 / 405 for what no route takes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Log } from './log.js'
import { toJson, type JsonValue } from './wire.js'

export const MAX_BODY = 64 * 1024
export const BODY_TIMEOUT_MS = 10_000

/** A body not read: too large (413) or too slow (408). */
export class BodyRefused extends Error {
  override name = 'BodyRefused'
  constructor (readonly status: 408 | 413, message: string) { super(message) }
}

/** One request as a handler sees it. */
export interface Request {
  method: string
  /** the path without its query string */
  path: string
  query: URLSearchParams
  headers: IncomingMessage['headers']
  /** the whole body (at most MAX_BODY bytes, within BODY_TIMEOUT_MS), or a BodyRefused */
  body: () => Promise<Uint8Array>
}

/** What a handler answers: a status and a JSON value, or raw text with its content type. */
export type Reply =
  | { status: number, json: JsonValue | object, headers?: Record<string, string> }
  | { status: number, text: string, contentType: string, headers?: Record<string, string> }

export type Handler = (req: Request) => Promise<Reply> | Reply

/** A route: an exact path, or a prefix ending in `/` (`/intents/` takes `/intents/<cid>`). */
export interface Route { method: string, path: string, handler: Handler }

export function json (status: number, value: JsonValue | object): Reply {
  return { status, json: value }
}

function matches (route: Route, path: string): boolean {
  return route.path.endsWith('/') ? path.startsWith(route.path) && path.length > route.path.length : path === route.path
}

function announcesBody (req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length.trim() !== '' && length.trim() !== '0')
}

function readBody (req: IncomingMessage, timeoutMs: number): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length'] ?? '')
  if (Number.isInteger(declared) && declared > MAX_BODY) {
    return Promise.reject(new BodyRefused(413, `body larger than ${MAX_BODY} bytes`)) // refused unread
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const timer = setTimeout(() => {
      done(); reject(new BodyRefused(408, `body not received within ${timeoutMs / 1000} s (${size} bytes came)`))
    }, timeoutMs)
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > MAX_BODY) { done(); reject(new BodyRefused(413, `body larger than ${MAX_BODY} bytes`)); return }
      chunks.push(chunk)
    }
    const onEnd = (): void => { done(); resolve(Buffer.concat(chunks)) }
    const onClose = (): void => { done(); reject(new BodyRefused(408, 'the client went away before its body ended')) }
    function done (): void {
      clearTimeout(timer)
      req.off('data', onData); req.off('end', onEnd); req.off('close', onClose)
      req.pause()
    }
    req.on('data', onData); req.once('end', onEnd); req.once('close', onClose)
  })
}

function send (res: ServerResponse, reply: Reply, close: boolean): void {
  const headers: Record<string, string> = { ...(reply.headers ?? {}) }
  let body: string
  if ('json' in reply) {
    body = toJson(reply.json)
    headers['content-type'] = 'application/json'
  } else {
    body = reply.text
    headers['content-type'] = reply.contentType
  }
  headers['content-length'] = String(Buffer.byteLength(body))
  if (close) headers.connection = 'close'
  res.writeHead(reply.status, headers)
  res.end(body)
}

/** A server for `routes`, not yet listening (`listen(server, port)`). */
export function httpServer (routes: readonly Route[], log: Log, bodyTimeoutMs = BODY_TIMEOUT_MS): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://node')
    let bodyRead = !announcesBody(req)
    const request: Request = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: async () => {
        const body = await readBody(req, bodyTimeoutMs)
        bodyRead = true
        return body
      }
    }
    const answer = async (): Promise<Reply> => {
      const onPath = routes.filter((r) => matches(r, request.path))
      const route = onPath.find((r) => r.method === request.method)
      if (route === undefined) {
        return onPath.length === 0
          ? json(404, { error: `no route ${request.path}` })
          : json(405, { error: `method ${request.method} not allowed; allowed: ${onPath.map((r) => r.method).join(', ')}` })
      }
      try {
        return await route.handler(request)
      } catch (err) {
        if (err instanceof BodyRefused) return json(err.status, { error: err.message, field: 'body' })
        const type = err instanceof Error ? err.name : typeof err
        log.error('handler failed', { path: request.path, error: String(err) })
        return json(500, { error: `internal error: ${type}` })
      }
    }
    void answer().then((reply) => {
      if (res.destroyed) return
      send(res, reply, !bodyRead)
      if (!bodyRead) res.once('finish', () => req.socket.destroySoon())
    })
  })
}

/** Starts `server` on every interface at `port` (0: any free port) and resolves with the port. */
export async function listen (server: Server, port: number, host = '0.0.0.0'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  const address = server.address()
  return typeof address === 'object' && address !== null ? address.port : port
}

/** Stops accepting and closes every connection, idle or not. */
export async function close (server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}
