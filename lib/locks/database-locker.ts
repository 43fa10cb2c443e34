/**
 * One writer per upload across every instance that shares the database.
 *
 * A lock is a row of `tus_locks`: (id, owner, expires_at). It is taken with one
 * upsert that succeeds only when there is no row or the row's lease has
 * lapsed, renewed by its holder every quarter of the lease while held, and
 * released by deleting the row where the owner still matches. No database
 * connection is held while a lock is held: each step is one short statement,
 * so a pool of 10 connections carries any number of concurrent uploads.
 *
 * An instance that dies leaves its rows behind; they lapse after at most
 * `lease` ms and are then taken by the next request (and purged eventually).
 *
 * A request that finds the lock held and is willing to wait (a resuming PATCH,
 * a DELETE) marks the row (`requested_at`); the holder sees the mark at its
 * next renewal and asks its request whether to give the upload up (a writer
 * whose client has gone silent does), as MemoryLocker does within a process.
 *
 * A holder that cannot renew in time (a database outage, a stalled process) or
 * finds its row taken is told through `onLost`, so it stops writing before
 * another instance may start.
 *
 * Times are the instances' clocks: keep them in sync (NTP); a skew adds to the
 * bound on a dead instance's lock.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import type { Lock, LockRequest, Locker } from '../../types/index.js'
import type { TusDatabase } from '../store/meta/schema.js'

export interface DatabaseLockerOptions {
  /** Lease length in ms. */
  lease: number
  log?: Pick<FastifyBaseLogger, 'warn' | 'error'>
  /** How often lapsed rows left by dead instances are removed, in ms; 0 = never. Default 1 hour. */
  purgeInterval?: number
}

interface Held {
  id: string
  owner: string
  timer: NodeJS.Timeout
  /** Until when the lease is known to be ours. */
  confirmedUntil: number
  /** The newest takeover request already put to the holder. */
  seenRequest: number
  request: LockRequest
  lost: boolean
}

export class DatabaseLocker implements Locker {
  private readonly held = new Set<Held>()
  private purgeTimer: NodeJS.Timeout | undefined
  private closed = false

  constructor (private readonly db: Kysely<TusDatabase>, private readonly options: DatabaseLockerOptions) {}

  async tryAcquire (id: string, request: LockRequest = {}): Promise<Lock | null> {
    if (this.closed) return null
    const owner = randomUUID()
    const now = Date.now()
    const expiresAt = now + this.options.lease
    const result = await this.db.insertInto('tus_locks')
      .values({ id, owner, expires_at: expiresAt, requested_at: null })
      .onConflict((oc) => oc.column('id')
        .doUpdateSet({ owner, expires_at: expiresAt, requested_at: null })
        .where('tus_locks.expires_at', '<=', now))
      .executeTakeFirst()
    if (result.numInsertedOrUpdatedRows !== 1n) {
      if (request.wait !== undefined && request.wait > 0) await this.requestRelease(id, now)
      return null
    }

    const held: Held = { id, owner, confirmedUntil: expiresAt, seenRequest: 0, request, lost: false, timer: undefined as unknown as NodeJS.Timeout }
    held.timer = setInterval(() => { void this.renew(held) }, Math.max(Math.floor(this.options.lease / 4), 50))
    held.timer.unref()
    this.held.add(held)
    let done = false
    return {
      release: async () => {
        if (done) return
        done = true
        await this.release(held)
      },
      held: () => !done && this.vouchFor(held)
    }
  }

  /**
   * True while the lease is known to be ours for a while yet, judged from the
   * clock alone: a process that was frozen (stopped, swapped out, a long pause)
   * past its lease must not write another byte before its renewal timer has had a
   * chance to run (after waking, I/O callbacks may run before the timers).
   */
  private vouchFor (held: Held): boolean {
    if (held.lost) return false
    if (held.confirmedUntil - Date.now() >= this.options.lease / 3) return true
    this.lose(held, 'its lease could not be renewed in time')
    return false
  }

  /** How many locks this instance holds (for tests and metrics). */
  get size (): number {
    return this.held.size
  }

  /** Remove rows whose lease lapsed long ago (left by instances that died). */
  async purgeLapsed (now = Date.now()): Promise<number> {
    // A row still being taken over is re-checked under its row lock by PostgreSQL, so a fresh lease is never deleted.
    const result = await this.db.deleteFrom('tus_locks').where('expires_at', '<', now - this.options.lease).executeTakeFirst()
    return Number(result.numDeletedRows)
  }

  /** Purge lapsed rows now and then every `purgeInterval`. */
  start (): void {
    const interval = this.options.purgeInterval ?? 3_600_000
    const purge = (): void => {
      this.purgeLapsed().catch((err) => this.options.log?.warn({ err }, 'fastify-tus: purging lapsed upload locks failed'))
    }
    purge()
    if (interval > 0) {
      this.purgeTimer = setInterval(purge, interval)
      this.purgeTimer.unref()
    }
  }

  /** Stop renewing and give back every lock still held (best effort: they lapse anyway). */
  async close (): Promise<void> {
    this.closed = true
    if (this.purgeTimer !== undefined) clearInterval(this.purgeTimer)
    await Promise.allSettled([...this.held].map(async (held) => this.release(held)))
  }

  private async release (held: Held): Promise<void> {
    clearInterval(held.timer)
    if (!this.held.delete(held)) return
    try {
      await this.db.deleteFrom('tus_locks').where('id', '=', held.id).where('owner', '=', held.owner).execute()
    } catch (err) {
      // Not fatal: the lease lapses on its own.
      this.options.log?.warn({ err, upload: held.id }, 'fastify-tus: releasing an upload lock failed; it will lapse')
    }
  }

  private async requestRelease (id: string, now: number): Promise<void> {
    try {
      await this.db.updateTable('tus_locks').set({ requested_at: now }).where('id', '=', id).where('expires_at', '>', now).execute()
    } catch (err) {
      this.options.log?.warn({ err, upload: id }, 'fastify-tus: asking another instance for an upload failed')
    }
  }

  private async renew (held: Held): Promise<void> {
    if (!this.held.has(held)) return
    const started = Date.now()
    // Renewals every quarter of the lease: after two that failed, less than a
    // third is left, so stop writing before another instance may take over.
    if (!this.vouchFor(held)) return
    let row: { requested_at: number | string | bigint | null } | undefined
    try {
      row = await this.db.updateTable('tus_locks')
        .set({ expires_at: started + this.options.lease })
        .where('id', '=', held.id)
        .where('owner', '=', held.owner)
        .returning('requested_at')
        .executeTakeFirst()
    } catch (err) {
      this.options.log?.warn({ err, upload: held.id }, 'fastify-tus: renewing an upload lock failed; retrying')
      return
    }
    if (!this.held.has(held)) return // released meanwhile
    if (row === undefined) return this.lose(held, 'another instance took it after its lease lapsed')
    held.confirmedUntil = started + this.options.lease
    const requested = row.requested_at === null ? 0 : Number(row.requested_at)
    if (requested > held.seenRequest) {
      held.seenRequest = requested
      // The holder answers true when it gives way (and then releases soon).
      held.request.onReleaseRequested?.()
    }
  }

  private lose (held: Held, why: string): void {
    if (held.lost) return
    held.lost = true
    clearInterval(held.timer)
    this.options.log?.error({ upload: held.id }, `fastify-tus: lost the lock of an upload: ${why}`)
    held.request.onLost?.()
  }
}
