/**
 * Graceful shutdown of the upload routes (`app.close()`, SIGTERM to `serve`).
 *
 * From the moment the app starts closing, new requests are refused with 503
 * (Connection: close, Retry-After) and every reply says Connection: close, so a
 * load balancer sends the client's retry elsewhere. Bodies already streaming
 * may finish for up to the shutdown timeout; the ones still streaming a little
 * before it (CUT_MARGIN) are cut: their request stops reading, the bytes that
 * reached storage are kept and their offset committed (a checksummed body is
 * all or nothing, so its unverified chunk is dropped), and the client is
 * answered 503 to resume from there. At the timeout, connections still open
 * are closed, so that the app's close can go on to release locks and hand back
 * onComplete runs.
 */
import type { FastifyBaseLogger } from 'fastify'

/** How long before the shutdown timeout streaming bodies are cut, so that their 503s go out and their offsets are committed in time. */
const CUT_MARGIN = 1000

/** The error a body ends with when the shutdown cut it. */
export class ShutdownCut extends Error {
  constructor () {
    super('the server is shutting down')
    this.name = 'ShutdownCut'
  }
}

export interface DrainReport {
  /** Bodies that were streaming when the shutdown began, or started since, and finished on their own. */
  drained: number
  /** Bodies cut at the shutdown timeout (their bytes kept, their offsets committed). */
  cut: number
}

export class Drain {
  /** True from the moment the app starts closing. */
  draining = false
  private readonly streaming = new Set<{ cut: (err: unknown) => void; wasCut: boolean }>()
  private readonly report: DrainReport = { drained: 0, cut: 0 }
  private cutting = false
  private readonly timers: NodeJS.Timeout[] = []
  private deadline = Infinity

  constructor (private readonly timeout: number, private readonly log: FastifyBaseLogger) {}

  /**
   * Runs `write`, the streaming of one request body; if the shutdown reaches its
   * cut meanwhile, `cut` is called with a ShutdownCut (the body should end as if
   * its client went away, keeping what was stored).
   */
  async during<T> (body: { cut: (err: unknown) => void }, write: () => Promise<T>): Promise<T> {
    const entry = { cut: body.cut, wasCut: false }
    this.streaming.add(entry)
    if (this.cutting) this.cutOne(entry)
    try {
      return await write()
    } finally {
      this.streaming.delete(entry)
      if (this.draining && !entry.wasCut) this.report.drained++
    }
  }

  /**
   * The app started closing: refuse new requests, cut bodies shortly before the
   * timeout, close what is still open at the timeout (`closeConnections`).
   */
  begin (closeConnections: () => void): void {
    if (this.draining) return
    this.draining = true
    this.deadline = Date.now() + this.timeout
    this.log.info({ streaming: this.streaming.size, timeout: this.timeout }, 'fastify-tus: shutting down; requests in flight may finish until the shutdown timeout')
    const cutAfter = Math.max(this.timeout - Math.min(CUT_MARGIN, this.timeout / 4), 0)
    this.timers.push(setTimeout(() => {
      this.cutting = true
      for (const entry of this.streaming) this.cutOne(entry)
    }, cutAfter).unref())
    this.timers.push(setTimeout(closeConnections, this.timeout).unref())
  }

  /** Milliseconds left until the shutdown timeout (0 when past it; Infinity when not shutting down). */
  remaining (): number {
    return Math.max(this.deadline - Date.now(), 0)
  }

  /** The app's close went through: stop the timers and say what the drain did. */
  end (): DrainReport {
    for (const timer of this.timers) clearTimeout(timer)
    if (this.draining) this.log.info(this.report, `fastify-tus: shutdown drained ${this.report.drained} uploading request(s) and cut ${this.report.cut} at the timeout (their offsets committed)`)
    return { ...this.report }
  }

  private cutOne (entry: { cut: (err: unknown) => void; wasCut: boolean }): void {
    if (entry.wasCut) return
    entry.wasCut = true
    this.report.cut++
    entry.cut(new ShutdownCut())
  }
}
