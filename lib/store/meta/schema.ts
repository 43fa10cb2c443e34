/**
 * The one declaration of the uploads table. Times are milliseconds since the
 * epoch in BIGINT columns so SQLite and PostgreSQL store them the same way;
 * PostgreSQL hands BIGINT back as a string, hence the wider select types.
 */
import type { ColumnType } from 'kysely'

type BigIntColumn = ColumnType<number | string | bigint, number, number>
type NullableBigIntColumn = ColumnType<number | string | bigint | null, number | null, number | null>

export interface UploadsTable {
  id: string
  upload_offset: BigIntColumn
  upload_length: NullableBigIntColumn
  /** JSON object of the decoded Upload-Metadata. */
  metadata: string
  concat: 'partial' | 'final' | null
  /** JSON array of part ids for a final upload. */
  parts: string | null
  created_at: BigIntColumn
  expires_at: NullableBigIntColumn
  completed_at: NullableBigIntColumn
  /** onComplete delivery: null, pending, running, delivered, rejected, failed. */
  complete_hook_state: 'pending' | 'running' | 'delivered' | 'rejected' | 'failed' | null
  complete_hook_attempts: ColumnType<number, number | undefined, number>
  complete_hook_error: string | null
  /** Retry time while pending; lease end while running. */
  complete_hook_next_at: NullableBigIntColumn
  complete_hook_done_at: NullableBigIntColumn
}

/** One row per locked upload: a lease its owner renews while it holds it. */
export interface LocksTable {
  id: string
  /** Random per acquisition, so only the holder renews or releases it. */
  owner: string
  /** Milliseconds since the epoch; past it, anyone may take the lock. */
  expires_at: BigIntColumn
  /** Set by a request on another instance that wants the upload (see LockRequest.onReleaseRequested). */
  requested_at: NullableBigIntColumn
  /**
   * The instance (a tus_instances row) that holds it: once that instance's
   * heartbeat is stale, or its row is gone, the lock is free whatever its lease
   * says. Null for rows written by versions before heartbeats (lease only).
   */
  instance: ColumnType<string | null, string | null | undefined, string | null>
}

/** One row per running instance on a shared database, renewed by its heartbeat. */
export interface InstancesTable {
  /** Random per start of a locker. */
  id: string
  /**
   * Milliseconds since the epoch: the latest heartbeat plus the instance's own
   * timeout. Past it the instance counts as dead and its locks are free; each
   * instance states its own, so instances with different timeouts judge each
   * other by the holder's promise, not their own setting.
   */
  expires_at: BigIntColumn
  started_at: BigIntColumn
}

/**
 * An object store's state of an upload, one version per offset it reached
 * (see lib/store/meta/object-states.ts). Unused with files on disk.
 */
export interface ObjectStatesTable {
  id: string
  upload_offset: BigIntColumn
  multipart_id: string | null
  part_count: ColumnType<number | string | bigint, number, number>
  tail_key: string | null
  tail_size: BigIntColumn
  content_type: string | null
  /** 1 once the finished object is in place. */
  finished: ColumnType<number | string | bigint, number, number>
}

/** The ETag of each part an object store uploaded. */
export interface ObjectPartsTable {
  id: string
  part_number: ColumnType<number | string | bigint, number, number>
  etag: string
}

export interface TusDatabase {
  tus_uploads: UploadsTable
  tus_locks: LocksTable
  tus_instances: InstancesTable
  tus_object_states: ObjectStatesTable
  tus_object_parts: ObjectPartsTable
}

export const UPLOADS_TABLE = 'tus_uploads'
