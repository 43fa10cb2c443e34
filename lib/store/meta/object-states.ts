/**
 * What an object store keeps in the database about each upload it holds: one
 * version of the stored state per offset it reached (the multipart upload, how
 * many parts, the tail object), and the tag of every part uploaded (S3's
 * ETag, Azure's block id).
 *
 * Versions are keyed by offset so that the protocol layer never has to carry
 * them: a write starts from the version at the upload's committed offset, and
 * adds a version for every offset it reaches. Whether the upload's row then
 * moves to that offset (the body was accepted) or stays (a checksum did not
 * match) decides which version the next write starts from; the others are
 * pruned then. A version is written only after storage acknowledged its bytes,
 * so the committed offset is never ahead of them.
 */
import type { Kysely, Selectable } from 'kysely'
import type { ObjectStatesTable, TusDatabase } from './schema.js'
import type { PartTag } from '../data/object-bucket.js'

export interface ObjectState {
  /** Bytes the version covers: full parts, then the tail. */
  offset: number
  /** The multipart upload the parts belong to, once one was started. */
  multipartId: string | null
  /** Full parts uploaded (numbers 1…partCount), each of the store's part size. */
  partCount: number
  /** The bytes after the last full part, in an object of their own, or null. */
  tailKey: string | null
  tailSize: number
  /** Content-Type the finished object gets. */
  contentType: string | null
  /** The finished object is in place (`offset` is its size); nothing more is written. */
  finished: boolean
}

const toNumber = (value: number | string | bigint): number => Number(value)

function toState (row: Selectable<ObjectStatesTable>): ObjectState {
  return {
    offset: toNumber(row.upload_offset),
    multipartId: row.multipart_id,
    partCount: toNumber(row.part_count),
    tailKey: row.tail_key,
    tailSize: toNumber(row.tail_size),
    contentType: row.content_type,
    finished: toNumber(row.finished) === 1
  }
}

export class ObjectStates {
  constructor (private readonly db: Kysely<TusDatabase>) {}

  /** The version at `offset`, if there is one. */
  async at (id: string, offset: number): Promise<ObjectState | undefined> {
    const row = await this.db.selectFrom('tus_object_states').selectAll().where('id', '=', id).where('upload_offset', '=', offset).executeTakeFirst()
    return row === undefined ? undefined : toState(row)
  }

  /** Every version, lowest offset first. */
  async all (id: string): Promise<ObjectState[]> {
    const rows = await this.db.selectFrom('tus_object_states').selectAll().where('id', '=', id).orderBy('upload_offset').execute()
    return rows.map(toState)
  }

  /** Insert a new upload's first version; false when the id has one already. */
  async create (id: string, contentType: string | null): Promise<boolean> {
    const result = await this.db.insertInto('tus_object_states')
      .values({ id, upload_offset: 0, multipart_id: null, part_count: 0, tail_key: null, tail_size: 0, content_type: contentType, finished: 0 })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst()
    return result.numInsertedOrUpdatedRows === 1n
  }

  /** Record a version (replacing one left at the same offset by a write that was not committed). */
  async put (id: string, state: ObjectState): Promise<void> {
    const values = {
      multipart_id: state.multipartId,
      part_count: state.partCount,
      tail_key: state.tailKey,
      tail_size: state.tailSize,
      content_type: state.contentType,
      finished: state.finished ? 1 : 0
    }
    await this.db.insertInto('tus_object_states')
      .values({ id, upload_offset: state.offset, ...values })
      .onConflict((oc) => oc.columns(['id', 'upload_offset']).doUpdateSet(values))
      .execute()
  }

  /** Remove every version but the one at `offset`; answers the removed ones. */
  async keepOnly (id: string, offset: number): Promise<ObjectState[]> {
    const others = (await this.all(id)).filter((s) => s.offset !== offset)
    if (others.length > 0) await this.db.deleteFrom('tus_object_states').where('id', '=', id).where('upload_offset', '!=', offset).execute()
    return others
  }

  /** Remove every version and part of an upload; answers the versions. */
  async removeAll (id: string): Promise<ObjectState[]> {
    const all = await this.all(id)
    await this.db.deleteFrom('tus_object_states').where('id', '=', id).execute()
    await this.db.deleteFrom('tus_object_parts').where('id', '=', id).execute()
    return all
  }

  async putPart (id: string, { partNumber, tag: etag }: PartTag): Promise<void> {
    await this.db.insertInto('tus_object_parts')
      .values({ id, part_number: partNumber, etag })
      .onConflict((oc) => oc.columns(['id', 'part_number']).doUpdateSet({ etag }))
      .execute()
  }

  /** Tags of parts 1…count, in order. */
  async parts (id: string, count: number): Promise<PartTag[]> {
    const rows = await this.db.selectFrom('tus_object_parts').select(['part_number', 'etag'])
      .where('id', '=', id).where('part_number', '<=', count).orderBy('part_number').execute()
    if (rows.length !== count) throw new Error(`upload ${id}: ${rows.length} of its ${count} parts are recorded`)
    return rows.map((row) => ({ partNumber: toNumber(row.part_number), tag: row.etag }))
  }

  /** Forget the parts once the finished object holds them. */
  async dropParts (id: string): Promise<void> {
    await this.db.deleteFrom('tus_object_parts').where('id', '=', id).execute()
  }
}
