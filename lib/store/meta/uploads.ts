/**
 * The queries on the uploads table. Portable SQL only (no SQLite-only syntax),
 * so the same code runs on PostgreSQL. Offsets only move by compare-and-set.
 */
import type { Kysely, Selectable, Updateable } from 'kysely'
import type {
  ListUploadsOptions, NewUpload, OffsetChanges, UploadMetadata, UploadRecord, UploadRepository
} from '../../../types/index.js'
import type { TusDatabase, UploadsTable } from './schema.js'
import { CompiledQueries } from './compiled-queries.js'

type Row = Selectable<UploadsTable>

const toNumber = (value: number | string | bigint): number => Number(value)
const toDate = (value: number | string | bigint | null): Date | null => value === null ? null : new Date(Number(value))

function toRecord (row: Row): UploadRecord {
  return {
    id: row.id,
    offset: toNumber(row.upload_offset),
    length: row.upload_length === null ? null : toNumber(row.upload_length),
    metadata: Object.assign(Object.create(null), JSON.parse(row.metadata)) as UploadMetadata,
    concat: row.concat,
    parts: row.parts === null ? null : JSON.parse(row.parts) as string[],
    createdAt: new Date(toNumber(row.created_at)),
    expiresAt: toDate(row.expires_at),
    completedAt: toDate(row.completed_at),
    completeHook: row.complete_hook_state === null
      ? null
      : {
          state: row.complete_hook_state,
          attempts: toNumber(row.complete_hook_attempts),
          lastError: row.complete_hook_error,
          nextAttemptAt: toDate(row.complete_hook_next_at),
          deliveredAt: toDate(row.complete_hook_done_at)
        }
  }
}

export interface UploadRepositorySettings {
  /**
   * Whether a finished upload owes an onComplete delivery. With no handler
   * registered there is nothing to deliver: the completing update records it as
   * delivered (0 attempts) instead of leaving a claim, a lookup and a settle to
   * every finishing request.
   */
  owesCompleteHook?: () => boolean
}

/** The columns named and their values, in one order. */
function columnsOf (row: object): { names: string[]; values: unknown[] } {
  return { names: Object.keys(row), values: Object.values(row) }
}
const objectOf = (names: string[], values: readonly unknown[]): Record<string, unknown> =>
  Object.fromEntries(names.map((name, i) => [name, values[i]]))

export class KyselyUploadRepository implements UploadRepository {
  private readonly owesCompleteHook: () => boolean
  /** The queries every request makes (insert, get, advanceOffset), compiled once per shape. */
  private readonly hot: CompiledQueries

  constructor (private readonly db: Kysely<TusDatabase>, settings: UploadRepositorySettings = {}) {
    this.owesCompleteHook = settings.owesCompleteHook ?? (() => true)
    this.hot = new CompiledQueries(db)
  }

  async insert (upload: NewUpload): Promise<UploadRecord> {
    const row: Row = {
      id: upload.id,
      upload_offset: upload.offset ?? 0,
      upload_length: upload.length,
      metadata: JSON.stringify(upload.metadata),
      concat: upload.concat,
      parts: upload.parts === null ? null : JSON.stringify(upload.parts),
      created_at: Date.now(),
      expires_at: upload.expiresAt === null ? null : upload.expiresAt.getTime(),
      completed_at: null,
      complete_hook_state: null,
      complete_hook_attempts: 0,
      complete_hook_error: null,
      complete_hook_next_at: null,
      complete_hook_done_at: null,
      ...(upload.complete === true ? this.completion(upload.concat === 'partial') : {})
    } as Row
    const { names, values } = columnsOf(row)
    await this.hot.run(`insert:${names.join()}`, values, (v) => this.db.insertInto('tus_uploads').values(objectOf(names, v) as any))
    return toRecord(row)
  }

  async get (id: string): Promise<UploadRecord | undefined> {
    const { rows } = await this.hot.run('get', [id], (v) => this.db.selectFrom('tus_uploads').selectAll().where('id', '=', v[0] as string))
    const row = rows[0]
    return row === undefined ? undefined : toRecord(row)
  }

  async advanceOffset (id: string, from: number, to: number, changes: OffsetChanges): Promise<boolean> {
    const set: Updateable<UploadsTable> = {
      upload_offset: to,
      expires_at: changes.complete || changes.expiresAt === null ? null : changes.expiresAt.getTime(),
      // Completion and the pending onComplete are one update: never final without a hook owed.
      ...(changes.complete ? this.completion(changes.partial === true) : {}),
      ...(changes.length === undefined ? {} : { upload_length: changes.length })
    }
    const { names, values } = columnsOf(set)
    const n = names.length
    const result = await this.hot.run(`advance:${names.join()}`, [...values, id, from], (v) => this.db.updateTable('tus_uploads')
      .set(objectOf(names, v))
      .where('id', '=', v[n] as string)
      .where('upload_offset', '=', v[n + 1] as number)
      .where('completed_at', 'is', null))
    return result.numAffectedRows === 1n
  }

  /** The columns a completing update sets. Partial uploads are not files: no hook for them. */
  private completion (partial: boolean): Updateable<UploadsTable> {
    const now = Date.now()
    if (partial) return { completed_at: now, complete_hook_state: null }
    if (this.owesCompleteHook()) return { completed_at: now, complete_hook_state: 'pending' }
    return { completed_at: now, complete_hook_state: 'delivered', complete_hook_done_at: now }
  }

  async declareLength (id: string, length: number): Promise<boolean> {
    const result = await this.db.updateTable('tus_uploads')
      .set({ upload_length: length })
      .where('id', '=', id)
      .where('upload_length', 'is', null)
      .executeTakeFirst()
    return result.numUpdatedRows === 1n
  }

  async delete (id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('tus_uploads').where('id', '=', id).executeTakeFirst()
    return result.numDeletedRows === 1n
  }

  async list (options: ListUploadsOptions = {}): Promise<UploadRecord[]> {
    const limit = Math.min(Math.max(options.limit ?? 100, 1), 1000)
    let query = this.db.selectFrom('tus_uploads').selectAll()
    if (options.status === 'finished') query = query.where('completed_at', 'is not', null)
    if (options.status === 'unfinished') query = query.where('completed_at', 'is', null)
    const rows = await query.orderBy('created_at').orderBy('id').limit(limit).offset(Math.max(options.offset ?? 0, 0)).execute()
    return rows.map(toRecord)
  }

  async listExpired (now: Date, limit: number): Promise<UploadRecord[]> {
    const rows = await this.db.selectFrom('tus_uploads').selectAll()
      .where('completed_at', 'is', null)
      .where('expires_at', '<', now.getTime())
      .orderBy('expires_at')
      .limit(limit)
      .execute()
    return rows.map(toRecord)
  }

  async finalsWaitingFor (partId: string): Promise<UploadRecord[]> {
    const rows = await this.db.selectFrom('tus_uploads').selectAll()
      .where('concat', '=', 'final')
      .where('completed_at', 'is', null)
      .execute()
    return rows.map(toRecord).filter((upload) => upload.parts?.includes(partId) === true)
  }

  async claimCompleteHook (id: string, now: Date, leaseUntil: Date): Promise<boolean> {
    const result = await this.db.updateTable('tus_uploads')
      .set((eb) => ({
        complete_hook_state: 'running' as const,
        complete_hook_next_at: leaseUntil.getTime(),
        complete_hook_attempts: eb('complete_hook_attempts', '+', 1)
      }))
      .where('id', '=', id)
      .where('complete_hook_state', 'in', ['pending', 'running'])
      .where((eb) => eb.or([eb('complete_hook_next_at', 'is', null), eb('complete_hook_next_at', '<=', now.getTime())]))
      .executeTakeFirst()
    return result.numUpdatedRows === 1n
  }

  async renewCompleteHook (id: string, leaseUntil: Date): Promise<void> {
    await this.db.updateTable('tus_uploads')
      .set({ complete_hook_next_at: leaseUntil.getTime() })
      .where('id', '=', id)
      .where('complete_hook_state', '=', 'running')
      .execute()
  }

  async settleCompleteHook (id: string, outcome: { state: 'pending' | 'delivered' | 'rejected' | 'failed'; error: string | null; nextAttemptAt: Date | null }): Promise<void> {
    await this.db.updateTable('tus_uploads')
      .set({
        complete_hook_state: outcome.state,
        complete_hook_error: outcome.error,
        complete_hook_next_at: outcome.nextAttemptAt === null ? null : outcome.nextAttemptAt.getTime(),
        complete_hook_done_at: outcome.state === 'delivered' || outcome.state === 'rejected' ? Date.now() : null
      })
      .where('id', '=', id)
      .execute()
  }

  /** onComplete deliveries pending, running and failed (the backlog a metric shows). */
  async countCompleteHooks (): Promise<{ pending: number; running: number; failed: number }> {
    const rows = await this.db.selectFrom('tus_uploads')
      .select((eb) => ['complete_hook_state', eb.fn.countAll<number | string | bigint>().as('n')])
      .where('complete_hook_state', 'in', ['pending', 'running', 'failed'])
      .groupBy('complete_hook_state')
      .execute()
    const counts = { pending: 0, running: 0, failed: 0 }
    for (const row of rows) counts[row.complete_hook_state as keyof typeof counts] = Number(row.n)
    return counts
  }

  async listDueCompleteHooks (now: Date, limit: number, untriedBefore: Date): Promise<string[]> {
    const rows = await this.db.selectFrom('tus_uploads').select('id')
      .where('complete_hook_state', 'in', ['pending', 'running'])
      // A delivery never tried belongs to the request that completed it, until that request is overdue.
      .where((eb) => eb.or([eb('complete_hook_attempts', '>', 0), eb('completed_at', '<=', untriedBefore.getTime())]))
      .where((eb) => eb.or([eb('complete_hook_next_at', 'is', null), eb('complete_hook_next_at', '<=', now.getTime())]))
      .orderBy('completed_at')
      .limit(limit)
      .execute()
    return rows.map((row) => row.id)
  }
}
