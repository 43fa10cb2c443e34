/**
 * At-least-once delivery of onComplete. Completion and a 'pending' delivery are
 * written to the row in one update (see advanceOffset); from then on:
 *
 *   pending ──claim──▶ running ──handlers return──▶ delivered
 *                        │  └──TusError 4xx──▶ rejected (a deliberate answer, not retried)
 *                        └──throws / process dies──▶ pending again after a backoff,
 *                                                    failed after `attempts` tries
 *
 * A claim is a lease on the row (renewed while the handlers run), so a run that
 * died with its process is taken up again once the lease lapses, by this
 * process after a restart or by any other process sharing the table.
 */
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { UploadRecord, UploadRepository } from '../../types/index.js'
import type { HookRegistry } from './registry.js'
import { TusError } from '../protocol/errors.js'

export interface CompletionSettings {
  attempts: number
  lease: number
  retryInterval: number
}

const MAX_BACKOFF = 5 * 60_000

/** Exponential backoff from 1 s, with jitter, capped at 5 minutes. */
export const backoff = (attempt: number): number =>
  Math.min(1000 * 2 ** (attempt - 1), MAX_BACKOFF) * (0.75 + Math.random() * 0.5)

const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err)).replace(/[\r\n]+/g, ' ').slice(0, 1000)

export class CompletionDelivery {
  private readonly running = new Map<string, Promise<void>>()
  private timer: NodeJS.Timeout | undefined
  /** Retries this instance scheduled, run at their due time rather than at the next sweep. */
  private readonly retries = new Set<NodeJS.Timeout>()
  private closed = false

  constructor (
    private readonly uploads: UploadRepository,
    private readonly hooks: HookRegistry,
    private readonly settings: CompletionSettings,
    private readonly log: FastifyBaseLogger
  ) {}

  /**
   * Run onComplete for an upload that was just completed. Answers after the
   * first attempt; throws only a TusError a handler threw on purpose (the
   * finishing request answers with it). Other failures are retried later.
   */
  async deliver (upload: UploadRecord, request: FastifyRequest | null): Promise<void> {
    const rejection = await this.attempt(upload.id, request, upload)
    if (rejection !== undefined) throw rejection
  }

  /** Look for due deliveries now and then every `retryInterval` ms. */
  start (): void {
    const tick = (): void => {
      this.sweep().catch((err) => this.log.error({ err }, 'fastify-tus: onComplete retry sweep failed'))
    }
    tick()
    if (this.settings.retryInterval > 0) {
      this.timer = setInterval(tick, this.settings.retryInterval)
      this.timer.unref()
    }
  }

  /** Take up no more deliveries (the app is shutting down); runs under way go on. */
  stop (): void {
    this.closed = true
    if (this.timer !== undefined) clearInterval(this.timer)
    for (const retry of this.retries) clearTimeout(retry)
    this.retries.clear()
  }

  /**
   * Stop retrying and wait for runs under way, for up to `within` ms; a run still
   * going then is handed back (pending, due now), so that another instance, or
   * this one restarted, takes it up at once instead of after its lease.
   */
  async close (within = Infinity): Promise<void> {
    this.stop()
    const runs = [...this.running.entries()]
    if (runs.length === 0) return
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<void>((resolve) => { timer = setTimeout(resolve, Math.min(within, 2 ** 31 - 1)) })
    await Promise.race([Promise.allSettled(runs.map(([, run]) => run)), timeout])
    clearTimeout(timer)
    const unfinished = runs.filter(([id]) => this.running.has(id)).map(([id]) => id)
    for (const id of unfinished) {
      try {
        await this.uploads.settleCompleteHook(id, { state: 'pending', error: 'handed back unfinished at shutdown', nextAttemptAt: new Date() })
      } catch (err) {
        this.log.warn({ err, upload: id }, 'fastify-tus: handing back an onComplete run failed; it is taken up when its lease lapses')
      }
    }
    if (unfinished.length > 0) this.log.warn({ uploads: unfinished }, `fastify-tus: handed back ${unfinished.length} onComplete run(s) still going at shutdown`)
  }

  /** Attempt `id` again at its due time, if this instance is still running then. */
  private retryAt (id: string, due: Date): void {
    if (this.closed) return
    const timer = setTimeout(() => {
      this.retries.delete(timer)
      if (this.closed) return
      this.attempt(id, null).catch((err) => this.log.error({ err, upload: id }, 'fastify-tus: onComplete retry failed'))
    }, Math.max(due.getTime() - Date.now(), 0))
    timer.unref()
    this.retries.add(timer)
  }

  /** Run every delivery that is due (pending, or running under a lapsed lease). */
  async sweep (): Promise<number> {
    let ran = 0
    // The request that completes an upload runs its first attempt itself; the
    // sweep takes it up only if that has not happened within a lease.
    const now = Date.now()
    for (const id of await this.uploads.listDueCompleteHooks(new Date(now), 100, new Date(now - this.settings.lease))) {
      if (this.closed) break
      if (this.running.has(id)) continue
      await this.attempt(id, null)
      ran++
    }
    return ran
  }

  /** One attempt: claim, run the handlers, record the outcome. */
  private async attempt (id: string, request: FastifyRequest | null, known?: UploadRecord): Promise<TusError | undefined> {
    if (this.running.has(id)) return undefined
    let settle!: () => void
    this.running.set(id, new Promise((resolve) => { settle = resolve }))
    try {
      const now = Date.now()
      if (!await this.uploads.claimCompleteHook(id, new Date(now), new Date(now + this.settings.lease))) return undefined
      const upload = await this.uploads.get(id) ?? known
      if (upload === undefined) return undefined
      const attempt = upload.completeHook?.attempts ?? 1
      // Claimed more often than allowed: the earlier runs never finished, their
      // process died in them (a handler that crashes it every time). Stop here.
      if (attempt > this.settings.attempts) {
        const error = `gave up after ${attempt - 1} attempts that did not finish (the process running them died)`
        this.log.error({ upload: id, attempt }, `fastify-tus: onComplete ${error}`)
        await this.uploads.settleCompleteHook(id, { state: 'failed', error, nextAttemptAt: null })
        return undefined
      }
      const renew = setInterval(() => {
        this.uploads.renewCompleteHook(id, new Date(Date.now() + this.settings.lease))
          .catch((err) => this.log.warn({ err, upload: id }, 'fastify-tus: renewing an onComplete lease failed'))
      }, Math.max(this.settings.lease / 3, 10))
      renew.unref()
      try {
        await this.hooks.runComplete({ request, upload, idempotencyKey: `${id}:complete`, attempt })
        await this.uploads.settleCompleteHook(id, { state: 'delivered', error: null, nextAttemptAt: null })
        return undefined
      } catch (err) {
        if (err instanceof TusError && err.statusCode < 500) {
          await this.uploads.settleCompleteHook(id, { state: 'rejected', error: describe(err), nextAttemptAt: null })
          return err
        }
        const giveUp = attempt >= this.settings.attempts
        this.log.error({ err, upload: id, attempt }, giveUp ? 'fastify-tus: onComplete failed for the last time' : 'fastify-tus: onComplete failed; it will be retried')
        const due = giveUp ? null : new Date(Date.now() + backoff(attempt))
        await this.uploads.settleCompleteHook(id, { state: giveUp ? 'failed' : 'pending', error: describe(err), nextAttemptAt: due })
        if (due !== null) this.retryAt(id, due)
        return undefined
      } finally {
        clearInterval(renew)
      }
    } finally {
      this.running.delete(id)
      settle()
    }
  }
}
