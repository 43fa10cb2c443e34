/**
 * One writer per upload across every instance that shares the database.
 *
 * A lock is a row of `tus_locks`: (id, owner, instance, expires_at). It is
 * taken with one upsert that succeeds when there is no row, when the row's
 * lease has lapsed, or when the instance that holds it is dead; renewed by its
 * holder every quarter of the lease while held; released by deleting the row
 * where the owner still matches. No database connection is held while a lock
 * is held: each step is one short statement, so a pool of 10 connections
 * carries any number of concurrent uploads.
 *
 * Dead instances: each locker keeps one row of `tus_instances` alive with a
 * heartbeat (one small UPDATE every quarter of `instanceTimeout`, 750 ms by
 * default, whatever the number of uploads), stating until when it vouches for
 * itself. A lock whose instance's row has expired, or is gone, is free at once,
 * so a killed instance's uploads are taken over within `instanceTimeout` (3 s)
 * instead of the lease (10 s), without renewing every lock more often. An
 * instance that shuts down cleanly deletes its locks and its row: free at once.
 *
 * A request that finds the lock held and is willing to wait (a resuming PATCH,
 * a DELETE) marks the row (`requested_at`); the holder sees the mark at its
 * next renewal and asks its request whether to give the upload up (a writer
 * whose client has gone silent does), as MemoryLocker does within a process.
 *
 * A holder vouches for a lock only while both its lease and its instance's
 * heartbeat are known good for a third of their length yet, judged by its own
 * clock; past that it is told through `onLost` and stops writing before another
 * instance may start. After a freeze (SIGSTOP, a long pause) every lock it held
 * is lost for good, even if no one took it meanwhile.
 *
 * Times are the instances' clocks: keep them in sync (NTP); a skew adds to the
 * bound on a dead instance's lock.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import { sql } from '../store/meta/kysely.js'
import type { Lock, LockRequest, Locker } from '../../types/index.js'
import type { TusDatabase } from '../store/meta/schema.js'

export interface DatabaseLockerOptions {
  /** Lease length in ms. */
  lease: number
  /** After how long without a heartbeat this instance counts as dead and its locks are free, in ms. Default 3000. */
  instanceTimeout?: number
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

/** How long the row of a dead instance is kept (harmless, and a trace for whoever looks) before a purge removes it. */
const DEAD_INSTANCE_KEPT = 3_600_000

export class DatabaseLocker implements Locker {
  private readonly held = new Set<Held>()
  private purgeTimer: NodeJS.Timeout | undefined
  private closed = false
  /** This instance's row in tus_instances. */
  readonly instance = randomUUID()
  private readonly instanceTimeout: number
  private registered: Promise<void> | undefined
  private beatTimer: NodeJS.Timeout | undefined
  private beating = false
  /** Until when this instance's row is known to say it is alive. */
  private aliveUntil = 0

  constructor (private readonly db: Kysely<TusDatabase>, private readonly options: DatabaseLockerOptions) {
    this.instanceTimeout = options.instanceTimeout ?? 3000
  }

  async tryAcquire (id: string, request: LockRequest = {}): Promise<Lock | null> {
    if (this.closed) return null
    await this.register()
    // Locks taken now must be good for a while: after a freeze, beat first.
    if (!this.instanceVouched()) await this.beat()
    if (!this.instanceVouched()) return null
    const owner = randomUUID()
    const now = Date.now()
    const expiresAt = now + this.options.lease
    const instance = this.instance
    const result = await this.db.insertInto('tus_locks')
      .values({ id, owner, expires_at: expiresAt, requested_at: null, instance })
      .onConflict((oc) => oc.column('id')
        .doUpdateSet({ owner, expires_at: expiresAt, requested_at: null, instance })
        .where((eb) => eb.or([
          eb('tus_locks.expires_at', '<=', now),
          // Held by an instance that stopped beating (or shut down): free.
          eb.and([
            eb('tus_locks.instance', 'is not', null),
            eb.not(eb.exists(eb.selectFrom('tus_instances')
              .select(sql<number>`1`.as('alive'))
              .whereRef('tus_instances.id', '=', 'tus_locks.instance')
              .where('tus_instances.expires_at', '>', now)))
          ])
        ])))
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
    if (!this.instanceVouched()) {
      this.lose(held, 'this instance\'s heartbeat could not be renewed in time')
      return false
    }
    if (held.confirmedUntil - Date.now() >= this.options.lease / 3) return true
    this.lose(held, 'its lease could not be renewed in time')
    return false
  }

  /** True while this instance's row is known to say alive for a third of the timeout yet. */
  private instanceVouched (): boolean {
    return this.aliveUntil - Date.now() >= this.instanceTimeout / 3
  }

  /** Insert this instance's row and start its heartbeat (once). */
  private async register (): Promise<void> {
    this.registered ??= (async () => {
      const now = Date.now()
      await this.db.insertInto('tus_instances').values({ id: this.instance, expires_at: now + this.instanceTimeout, started_at: now }).execute()
      this.aliveUntil = now + this.instanceTimeout
      this.beatTimer = setInterval(() => { void this.beat() }, Math.max(Math.floor(this.instanceTimeout / 4), 25))
      this.beatTimer.unref()
    })()
    try {
      await this.registered
    } catch (err) {
      this.registered = undefined
      throw err
    }
  }

  /**
   * One heartbeat. Once this instance could no longer vouch for itself (frozen,
   * or the database out of reach), every lock it held is lost before the beat
   * makes it look alive again: another instance may have taken them meanwhile.
   */
  private async beat (): Promise<void> {
    if (this.beating || this.closed) return
    this.beating = true
    const started = Date.now()
    try {
      if (!this.instanceVouched()) for (const held of this.held) this.lose(held, 'this instance\'s heartbeat could not be renewed in time')
      const result = await this.db.updateTable('tus_instances').set({ expires_at: started + this.instanceTimeout }).where('id', '=', this.instance).executeTakeFirst()
      if (result.numUpdatedRows === 1n) {
        this.aliveUntil = started + this.instanceTimeout
      } else if (!this.closed) {
        // Removed by another instance as long dead: this one's locks may be anyone's.
        for (const held of this.held) this.lose(held, 'this instance was declared dead by another one')
        await this.db.insertInto('tus_instances').values({ id: this.instance, expires_at: started + this.instanceTimeout, started_at: started }).execute()
        this.aliveUntil = started + this.instanceTimeout
      }
    } catch (err) {
      this.options.log?.warn({ err }, 'fastify-tus: the instance heartbeat failed; retrying')
    } finally {
      this.beating = false
    }
  }

  /** How many locks this instance holds (for tests and metrics). */
  get size (): number {
    return this.held.size
  }

  /** Remove rows whose lease lapsed long ago, and instances long dead (left by instances that died). */
  async purgeLapsed (now = Date.now()): Promise<number> {
    // A row still being taken over is re-checked under its row lock by PostgreSQL, so a fresh lease is never deleted.
    const result = await this.db.deleteFrom('tus_locks').where('expires_at', '<', now - this.options.lease).executeTakeFirst()
    await this.db.deleteFrom('tus_instances').where('expires_at', '<', now - DEAD_INSTANCE_KEPT).execute()
    return Number(result.numDeletedRows)
  }

  /** Register this instance (its heartbeat starts), purge lapsed rows now and then every `purgeInterval`. */
  start (): void {
    this.register().catch((err) => this.options.log?.warn({ err }, 'fastify-tus: registering this instance failed; retried on the first lock'))
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

  /**
   * Stop renewing and give back every lock still held, then remove this
   * instance's row, so that a lock row left behind (a release that failed) is
   * free at once too. Best effort: they lapse anyway.
   */
  async close (): Promise<void> {
    this.closed = true
    if (this.purgeTimer !== undefined) clearInterval(this.purgeTimer)
    if (this.beatTimer !== undefined) clearInterval(this.beatTimer)
    await Promise.allSettled([...this.held].map(async (held) => this.release(held)))
    if (this.registered === undefined) return
    try {
      await this.registered
      await this.db.deleteFrom('tus_instances').where('id', '=', this.instance).execute()
    } catch (err) {
      this.options.log?.warn({ err }, 'fastify-tus: removing this instance\'s heartbeat row failed; its locks free themselves when it expires')
    }
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
