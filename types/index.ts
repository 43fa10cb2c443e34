/**
 * Public types of fastify-tus: plugin options, the upload record, hook payloads,
 * the capability interfaces a storage backend implements, and the `app.tus`
 * decoration. Nothing in here has runtime behaviour.
 */
import type { FastifyRequest } from 'fastify'
import type { Readable } from 'node:stream'
import type { Kysely } from 'kysely'

/** Checksum algorithms the server can verify (Upload-Checksum). */
export type ChecksumAlgorithm = 'sha1' | 'sha256' | 'sha512' | 'md5'

/** Decoded Upload-Metadata: a key without a value maps to null. */
export type UploadMetadata = Record<string, string | null>

/** One upload as stored in the metadata table. */
export interface UploadRecord {
  /** Url-safe id, part of the upload URL. */
  id: string
  /** Bytes received and stored so far. Never ahead of the bytes on disk. */
  offset: number
  /** Total size, or null while the length is deferred. */
  length: number | null
  metadata: UploadMetadata
  /** 'partial' or 'final' for the concatenation extension, else null. */
  concat: 'partial' | 'final' | null
  /** For a final upload: the ids of its partial uploads, in order. */
  parts: string[] | null
  createdAt: Date
  /** When an unfinished upload expires, or null when it never does. */
  expiresAt: Date | null
  /** When the last byte was stored; null while unfinished. */
  completedAt: Date | null
  /** Delivery of onComplete, recorded with completion; null while unfinished and for partial uploads. */
  completeHook: CompleteHookStatus | null
}

/**
 * onComplete delivery, kept on the row so that it survives a crash:
 * - 'pending': due (or waiting for its retry time, `nextAttemptAt`);
 * - 'running': a handler run is under way (its lease ends at `nextAttemptAt`;
 *   a run whose process died is taken up again after that);
 * - 'delivered': every handler returned;
 * - 'rejected': a handler threw a TusError with a 4xx status (not retried);
 * - 'failed': every attempt threw; no more retries (`lastError` says why).
 */
export interface CompleteHookStatus {
  state: 'pending' | 'running' | 'delivered' | 'rejected' | 'failed'
  attempts: number
  lastError: string | null
  nextAttemptAt: Date | null
  deliveredAt: Date | null
}

/** What a client asked to create, as seen by onCreate. */
export interface UploadRequestInfo {
  length: number | null
  metadata: UploadMetadata
  concat: 'partial' | 'final' | null
  parts: string[] | null
}

/** Payload of the onCreate hook; it runs before the upload exists. */
export interface CreateHookPayload {
  request: FastifyRequest
  upload: UploadRequestInfo
}

/**
 * What an onCreate handler may return: a new id (from the id alphabet
 * `[A-Za-z0-9_-]`, at most 100 characters) and/or replacement metadata.
 * To reject the creation, throw `new TusError(status, reason)`.
 */
export interface CreateHookResult {
  id?: string
  metadata?: UploadMetadata
}

/**
 * Payload of onComplete: the row already says complete, all bytes are stored.
 * Delivery is at least once: a run that throws or dies is run again, so a
 * handler should be idempotent, keyed on `idempotencyKey`.
 */
export interface CompleteHookPayload {
  /** The request that finished the upload; null when run again later. */
  request: FastifyRequest | null
  upload: UploadRecord
  /** Stable across every attempt for this upload. */
  idempotencyKey: string
  /** 1 for the first run, then 2, 3... */
  attempt: number
}

/** Why an upload was removed. */
export type TerminationReason = 'client' | 'expired' | 'server'

/** Payload of onTerminate: the row and the bytes are already gone. */
export interface TerminateHookPayload {
  request: FastifyRequest | null
  upload: UploadRecord
  reason: TerminationReason
}

export type OnCreateHook = (payload: CreateHookPayload) => CreateHookResult | void | Promise<CreateHookResult | void>
export type OnCompleteHook = (payload: CompleteHookPayload) => void | Promise<void>
export type OnTerminateHook = (payload: TerminateHookPayload) => void | Promise<void>

export interface TusHooks {
  onCreate: OnCreateHook
  onComplete: OnCompleteHook
  onTerminate: OnTerminateHook
}
export type TusHookName = keyof TusHooks

/** CORS settings handed to @fastify/cors; tus headers are always allowed and exposed. */
export interface TusCorsOptions {
  /** Allowed origins: '*', one origin, a list, or a RegExp. Default '*'. */
  origin?: string | string[] | RegExp | boolean
  credentials?: boolean
  /** Extra request headers to allow beyond the tus ones (e.g. Authorization is included already). */
  allowedHeaders?: string[]
  /** Preflight cache lifetime in seconds. Default 86400. */
  maxAge?: number
}

export interface TusPluginOptions {
  /** URL path the upload endpoint is mounted at. Default '/files'. */
  prefix?: string
  /** Directory holding the uploaded bytes. Default './uploads'. */
  uploadDir?: string
  /**
   * Metadata database: a SQLite file path (default './uploads.db'), a
   * PostgreSQL connection string (`postgres://...` or `postgresql://...`; the
   * `pg` driver is loaded only then), or a ready Kysely instance (the plugin
   * then neither creates nor destroys it).
   */
  db?: string | Kysely<any>
  /** Connections in the pool the plugin opens for a PostgreSQL connection string. Default 10. */
  poolSize?: number
  /**
   * PostgreSQL schema the plugin's tables live in, created when missing (only
   * with a connection string). Default: the connection's search_path (public).
   */
  schema?: string
  /**
   * How one writer per upload is ensured: 'memory' (within this process) or
   * 'database' (a lease row in the table, for several instances on one
   * database; an in-process lock is still taken first). Default 'database' on
   * PostgreSQL, 'memory' otherwise.
   */
  locker?: 'memory' | 'database'
  /**
   * With the database locker: how long a lock lasts without renewal, in ms. A
   * holder renews it every quarter of this; a lock held by an instance that died
   * is given up after at most this long. Default 10000.
   */
  lockLease?: number
  /** Largest upload accepted, in bytes (Tus-Max-Size). Default: no limit. */
  maxSize?: number
  /** Largest body of a single PATCH or creation-with-upload POST, in bytes. Default: no limit. */
  maxChunkSize?: number
  /** Largest Upload-Metadata header accepted, in bytes. Default 4096. */
  maxMetadataSize?: number
  /** Unfinished uploads expire this many ms after their last write. Default: never (0). */
  expiration?: number
  /** How often expired uploads are removed, in ms. Default: min(expiration, 1 hour). 0 disables the timer. */
  cleanupInterval?: number
  /** Checksum algorithms advertised and accepted. Default all four. */
  checksumAlgorithms?: ChecksumAlgorithm[]
  /** fsync the bytes of every write before the offset is advanced. Default true. */
  fsync?: boolean
  /**
   * During a long PATCH, commit the offset after about every this many bytes
   * (without an Upload-Checksum), so a crash loses at most this much. 0 = only
   * at the end of each request. Default 8 MiB.
   */
  checkpointBytes?: number
  /**
   * On start, reconcile the table with the stored bytes (trim unconfirmed tails,
   * recreate missing files, remove files without a row). Default true.
   */
  recoverOnStart?: boolean
  /**
   * Whether the request that finishes an upload waits for onComplete ('wait',
   * the default: its errors can reach the client) or is answered first
   * ('background'). Either way delivery is recorded and retried.
   */
  completeDelivery?: 'wait' | 'background'
  /** How many times onComplete is attempted before the upload is marked 'failed'. Default 10. */
  completeHookAttempts?: number
  /** How long a running onComplete holds its claim before another run may take over, in ms; renewed while it runs. Default 30000. */
  completeHookLease?: number
  /** How often due onComplete retries are looked for, in ms. Default 5000. */
  completeHookRetryInterval?: number
  /** CORS through @fastify/cors; `false` leaves CORS to the host app. Default: any origin. */
  cors?: TusCorsOptions | false
  /** Handlers registered at start; more can be added with `app.tus.addHook`. */
  onCreate?: OnCreateHook | OnCreateHook[]
  onComplete?: OnCompleteHook | OnCompleteHook[]
  onTerminate?: OnTerminateHook | OnTerminateHook[]
}

/* ------------------------------------------------------------------ */
/* Capability interfaces a backend implements. The protocol code knows */
/* only these; it never touches a disk or a SQL statement itself.      */
/* ------------------------------------------------------------------ */

/** The result of streaming a body into storage. */
export interface WriteResult {
  /** Bytes that reached storage, counted from the requested offset. */
  bytesWritten: number
  /** Set when the write stopped early (source error, client gone, limit hit). */
  error?: unknown
}

/** Bytes: make room for a new upload. */
export interface ByteCreator {
  create(id: string): Promise<void>
}
export interface WriteOptions {
  /** Make the bytes durable (fsync) before the write answers, and before each checkpoint. */
  flush?: boolean
  /** Called after about every `every` bytes, once they are stored (and flushed). */
  checkpoint?: { every: number; at: (bytesWritten: number) => Promise<void> }
}
/** Bytes: append a stream at an offset. */
export interface ByteWriter {
  write(id: string, offset: number, source: AsyncIterable<Buffer>, options?: WriteOptions): Promise<WriteResult>
  /** Cut the stored bytes back to `length` (used to undo a rejected chunk). */
  truncate(id: string, length: number): Promise<void>
}
/** Bytes: read a finished upload, optionally a byte range (inclusive end). */
export interface ByteReader {
  createReadStream(id: string, range?: { start: number; end: number }): Readable
  size(id: string): Promise<number | null>
}
/** Bytes: remove an upload's bytes; missing bytes are not an error. */
export interface ByteTerminator {
  remove(id: string): Promise<void>
}
/** Bytes: join finished partial uploads into a final one, in order. */
export interface ByteConcatenator {
  concatenate(targetId: string, partIds: string[], options?: { flush?: boolean }): Promise<void>
}
/** Bytes: what is stored, for reconciling storage with the table after a crash. */
export interface ByteLister {
  /** Every stored upload id with when its bytes last changed. */
  list(): Promise<Array<{ id: string; modifiedAt: Date }>>
}
/** Everything the plugin needs from a byte store. */
export type DataStore = ByteCreator & ByteWriter & ByteReader & ByteTerminator & ByteConcatenator & ByteLister

export interface NewUpload {
  id: string
  length: number | null
  metadata: UploadMetadata
  concat: 'partial' | 'final' | null
  parts: string[] | null
  expiresAt: Date | null
}

export interface OffsetChanges {
  expiresAt: Date | null
  /** Record completion; onComplete delivery becomes 'pending' unless this is a partial upload. */
  complete: boolean
  partial?: boolean
  /** Also set the length (a final upload whose parts had deferred lengths). */
  length?: number
}

export interface ListUploadsOptions {
  /** 'finished', 'unfinished' or 'all' (default). */
  status?: 'finished' | 'unfinished' | 'all'
  /** Page size, default 100, at most 1000. */
  limit?: number
  /** Rows to skip, default 0. Uploads are ordered oldest first. */
  offset?: number
}

/** Metadata: one table of uploads. Offsets move only by compare-and-set. */
export interface UploadRepository {
  insert(upload: NewUpload): Promise<UploadRecord>
  get(id: string): Promise<UploadRecord | undefined>
  /**
   * Move the offset from `from` to `to` (compare-and-set); false when the offset
   * was no longer `from` or the upload is already complete. With `complete`, the
   * same update records completion, so an upload is never final without saying so.
   */
  advanceOffset(id: string, from: number, to: number, changes: OffsetChanges): Promise<boolean>
  /** Set the length of a deferred-length upload; false when it was already set. */
  declareLength(id: string, length: number): Promise<boolean>
  delete(id: string): Promise<boolean>
  list(options?: ListUploadsOptions): Promise<UploadRecord[]>
  /** Unfinished uploads whose expiry is before `now`. */
  listExpired(now: Date, limit: number): Promise<UploadRecord[]>
  /** Unfinished final uploads that list `partId` among their parts. */
  finalsWaitingFor(partId: string): Promise<UploadRecord[]>
  /** Take the onComplete run of an upload until `leaseUntil`, if it is due; false when it is not (or taken). */
  claimCompleteHook(id: string, now: Date, leaseUntil: Date): Promise<boolean>
  /** Extend a running claim. */
  renewCompleteHook(id: string, leaseUntil: Date): Promise<void>
  /** Record how a run ended. */
  settleCompleteHook(id: string, outcome: { state: 'pending' | 'delivered' | 'rejected' | 'failed'; error: string | null; nextAttemptAt: Date | null }): Promise<void>
  /** Ids whose onComplete is due now; a delivery never attempted counts only once its upload completed before `untriedBefore`. */
  listDueCompleteHooks(now: Date, limit: number, untriedBefore: Date): Promise<string[]>
}

/** A held lock; release is idempotent. */
export interface Lock {
  release(): Promise<void>
}
export interface LockRequest {
  /**
   * Kept with the lock once acquired: called when another request wants the
   * upload. Answer true to give the lock up (and then release it soon).
   */
  onReleaseRequested?: () => boolean
  /** When held, ask the holder to give it up and wait up to this many ms for it. Default: answer at once. */
  wait?: number
  /**
   * Kept with the lock once acquired: called when the lock can no longer be
   * vouched for (a lease that could not be renewed in time, or was taken by
   * another instance after it lapsed). The holder should stop writing at once.
   */
  onLost?: () => void
}
/** One writer per upload: null when the lock is held (and not given up). */
export interface Locker {
  tryAcquire(id: string, request?: LockRequest): Promise<Lock | null>
}

/* ------------------------------------------------------------------ */
/* The `app.tus` decoration.                                           */
/* ------------------------------------------------------------------ */

export interface TusDecorator {
  /** Add a lifecycle handler; handlers of one hook run in registration order. */
  addHook<K extends TusHookName>(name: K, handler: TusHooks[K]): void
  get(id: string): Promise<UploadRecord | undefined>
  list(options?: ListUploadsOptions): Promise<UploadRecord[]>
  /** Read the stored bytes of an upload (finished or not), optionally a range (inclusive end). */
  createReadStream(id: string, range?: { start: number; end: number }): Promise<Readable>
  /** Remove an upload (row and bytes); runs onTerminate with reason 'server'. False when unknown or busy. */
  delete(id: string): Promise<boolean>
  /** Remove every expired unfinished upload now; answers how many were removed. */
  cleanupExpired(): Promise<number>
  /** Run every onComplete delivery that is due now (normally done by a timer); answers how many ran. */
  runDueCompleteHooks(): Promise<number>
  /** The absolute path prefix uploads are served under, e.g. '/files'. */
  readonly prefix: string
}

declare module 'fastify' {
  interface FastifyInstance {
    tus: TusDecorator
  }
}
