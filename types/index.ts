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

/**
 * One upload as stored in the metadata table: what `app.tus.get` / `list`
 * answer and what onComplete and onTerminate receive.
 */
export interface UploadRecord {
  /** Url-safe id (`[A-Za-z0-9_-]{1,100}`): the last segment of the upload URL and the file name in uploadDir. */
  id: string
  /** Bytes received and committed so far. Never ahead of the bytes on disk. */
  offset: number
  /**
   * Total size in bytes, or null while the length is deferred (creation-defer-length),
   * and for a final upload whose parts' lengths are not all known yet.
   */
  length: number | null
  /** Decoded Upload-Metadata (values decoded as UTF-8; a key sent without value is null). */
  metadata: UploadMetadata
  /** 'partial' or 'final' for the concatenation extension, else null. */
  concat: 'partial' | 'final' | null
  /** For a final upload: the ids of its partial uploads, in order. Null otherwise. */
  parts: string[] | null
  /** When the upload was created. */
  createdAt: Date
  /**
   * When an unfinished upload expires (sliding: moved forward by every write), or null
   * when it never does (no `expiration` option, finished, or a final upload waiting for its parts).
   */
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
  /** Where the delivery stands (see above). */
  state: 'pending' | 'running' | 'delivered' | 'rejected' | 'failed'
  /** Runs started so far (a run lost in a crash counts). */
  attempts: number
  /** Message of the last failure or rejection (one line, at most 1000 characters), else null. */
  lastError: string | null
  /** 'pending': not before this time (retry backoff); 'running': when the claim's lease ends. Null otherwise. */
  nextAttemptAt: Date | null
  /** When every handler returned ('delivered'), else null. */
  deliveredAt: Date | null
}

/** What a client asked to create, as seen by onCreate. */
export interface UploadRequestInfo {
  /**
   * Upload-Length in bytes; null when deferred (Upload-Defer-Length: 1), or for a
   * final upload when one of its parts has no length yet.
   */
  length: number | null
  /** Decoded Upload-Metadata; replaced by the metadata an earlier onCreate handler returned. */
  metadata: UploadMetadata
  /** 'partial' or 'final' (Upload-Concat), else null. */
  concat: 'partial' | 'final' | null
  /** For a final upload: the ids of the partial uploads it joins, in order. Null otherwise. */
  parts: string[] | null
}

/**
 * Payload of the onCreate hook. It runs in the creating request, after the
 * headers were validated and before anything is stored; once per such request,
 * never retried. It may run for a creation that fails afterwards (the id it
 * chose exists, a creation-with-upload body is rejected), so it does not prove
 * the upload exists.
 */
export interface CreateHookPayload {
  /** The creating POST. */
  request: FastifyRequest
  /** What the client asked for. */
  upload: UploadRequestInfo
}

/**
 * What an onCreate handler may return: a new id (from the id alphabet
 * `[A-Za-z0-9_-]`, at most 100 characters) and/or replacement metadata.
 * To reject the creation, throw `new TusError(status, reason)`.
 */
export interface CreateHookResult {
  /** The id of the new upload instead of 128 random bits (an existing id answers 409, one outside the alphabet 500). The last handler that returns one wins. */
  id?: string
  /** Replaces (does not merge with) the metadata; later handlers see the new one. */
  metadata?: UploadMetadata
}

/**
 * Payload of onComplete: the row already says complete, all bytes are stored.
 * Delivery is at least once: a run that throws or dies is run again (every
 * handler, also those that had returned), so a handler should be idempotent,
 * keyed on `idempotencyKey`. A TusError with a status below 500 rejects the
 * upload instead: not retried, and with completeDelivery 'wait' the finishing
 * request answers with it. Never called for partial uploads.
 */
export interface CompleteHookPayload {
  /** The request that finished the upload, on the first attempt; null on retries and on runs taken up after a crash. */
  request: FastifyRequest | null
  /** The finished upload as read from the table (`completeHook.state` is 'running'). */
  upload: UploadRecord
  /** `<id>:complete`: the same on every attempt for this upload. */
  idempotencyKey: string
  /** 1 for the first run, then 2, 3... up to the completeHookAttempts option. */
  attempt: number
}

/** Why an upload was removed. */
export type TerminationReason = 'client' | 'expired' | 'server'

/**
 * Payload of onTerminate: the row and the bytes are already gone. At most once:
 * never retried, and not run if the process dies right after the removal. A
 * throw does not undo the removal.
 */
export interface TerminateHookPayload {
  /** The DELETE request; null for reason 'expired' and 'server'. */
  request: FastifyRequest | null
  /** The upload as it was before its removal. */
  upload: UploadRecord
  /** Who removed it. */
  reason: TerminationReason
}

/**
 * Payload of onProgress, while a PATCH body streams: at most every
 * `progressInterval` ms and once when the request ends, only when the offset
 * moved. Never awaited by the write path (a slow handler delays nothing; its
 * errors are logged). At most once per tick.
 */
export interface ProgressHookPayload {
  /** The PATCH. */
  request: FastifyRequest
  /**
   * The upload, with `offset` the bytes received so far (while the body streams,
   * not all of them are committed yet; on the last call, the offset committed).
   */
  upload: UploadRecord
}

/**
 * Payload of onBeforeTerminate: a DELETE (or a POST with X-HTTP-Method-Override:
 * DELETE) is about to remove the upload; the lock is held and nothing is removed
 * yet. Throw a TusError to refuse (its status and reason are the answer), e.g.
 * 403 for finished uploads. Awaited, once per DELETE; not run for expiry or
 * `app.tus.delete`.
 */
export interface BeforeTerminateHookPayload {
  /** The DELETE. */
  request: FastifyRequest
  /** The upload about to be removed. */
  upload: UploadRecord
}

/** Why a PATCH ended before its body did. */
export type InterruptionReason = 'client' | 'shutdown' | 'lock-lost' | 'storage'

/**
 * Payload of onInterrupted: a PATCH ended before its body did. Called once the
 * offset that is kept is committed, without delaying the answer (errors are
 * logged); at most once per PATCH.
 */
export interface InterruptedHookPayload {
  /** The PATCH. */
  request: FastifyRequest
  /** The upload, `offset` being what was kept (a resume starts there). */
  upload: UploadRecord
  /**
   * 'client': the connection closed or the body came short; 'shutdown': the
   * server's shutdown timeout cut it; 'lock-lost': another instance may own the
   * upload now; 'storage': storage failed mid-body.
   */
  reason: InterruptionReason
}

/**
 * Payload of onLengthDeclared: a deferred-length upload learnt its length (a
 * PATCH with Upload-Length was accepted). At most once per upload, after the
 * length is stored, without delaying the answer (errors are logged).
 */
export interface LengthDeclaredHookPayload {
  /** The PATCH that declared it. */
  request: FastifyRequest
  /** The upload with its new `length`. */
  upload: UploadRecord
}

/** An onCreate handler: reject by throwing a TusError, or return a new id and/or metadata. */
export type OnCreateHook = (payload: CreateHookPayload) => CreateHookResult | void | Promise<CreateHookResult | void>
/** An onComplete handler; should be idempotent (see CompleteHookPayload). */
export type OnCompleteHook = (payload: CompleteHookPayload) => void | Promise<void>
/** An onTerminate handler, for clean-up. */
export type OnTerminateHook = (payload: TerminateHookPayload) => void | Promise<void>

/** An onProgress handler (not awaited by the write path). */
export type OnProgressHook = (payload: ProgressHookPayload) => void | Promise<void>
/** An onBeforeTerminate handler: throw a TusError to refuse the DELETE. */
export type OnBeforeTerminateHook = (payload: BeforeTerminateHookPayload) => void | Promise<void>
/** An onInterrupted handler (not awaited by the answer). */
export type OnInterruptedHook = (payload: InterruptedHookPayload) => void | Promise<void>
/** An onLengthDeclared handler (not awaited by the answer). */
export type OnLengthDeclaredHook = (payload: LengthDeclaredHookPayload) => void | Promise<void>

/** The hooks by name, as taken by `app.tus.addHook` and the plugin options. */
export interface TusHooks {
  /** Before an upload is created. */
  onCreate: OnCreateHook
  /** After an upload's last byte is stored (at least once). */
  onComplete: OnCompleteHook
  /** After an upload was removed (at most once). */
  onTerminate: OnTerminateHook
  /** While a PATCH streams, throttled (not awaited). */
  onProgress: OnProgressHook
  /** Before a DELETE removes anything (awaited; a TusError refuses it). */
  onBeforeTerminate: OnBeforeTerminateHook
  /** When a PATCH ended before its body did (not awaited). */
  onInterrupted: OnInterruptedHook
  /** When a deferred length becomes known (not awaited). */
  onLengthDeclared: OnLengthDeclaredHook
}
/** The name of a hook: 'onCreate', 'onComplete', 'onTerminate', 'onProgress', 'onBeforeTerminate', 'onInterrupted' or 'onLengthDeclared'. */
export type TusHookName = keyof TusHooks

/**
 * A prom-client Registry (or anything with the same two methods): where the
 * plugin's metrics are registered (option `metrics`). The metrics are the
 * plugin's own objects, which a prom-client registry scrapes like its own
 * (`get()` in prom-client's shape); the plugin never imports prom-client.
 */
export interface TusMetricsRegistry {
  getSingleMetric(name: string): unknown
  registerMetric(metric: any): void
}

/** CORS settings handed to @fastify/cors; tus headers are always allowed and exposed. */
export interface TusCorsOptions {
  /** Allowed origins: '*', one origin, a list, a RegExp, or a boolean (true reflects the request's origin). Default '*'. */
  origin?: string | string[] | RegExp | boolean
  /** Send Access-Control-Allow-Credentials: true. Default false. */
  credentials?: boolean
  /** Extra request headers to allow beyond the tus ones (Authorization, Content-Type, X-Requested-With, X-Request-ID are included already). Default []. */
  allowedHeaders?: string[]
  /** Preflight cache lifetime (Access-Control-Max-Age) in seconds. Default 86400. */
  maxAge?: number
}

/**
 * Bytes in S3-compatible object storage instead of `uploadDir` (the option `s3`).
 * Credentials come from the AWS SDK's usual sources (AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY, profiles, instance roles) or `clientOptions.credentials`.
 */
export interface TusS3Options {
  /** The bucket (it must exist). */
  bucket: string
  /** Prepended to every key: a finished upload is the object `<prefix><id>`. '' or ending with '/'. Default ''. */
  prefix?: string
  /** An S3-compatible server's URL (path-style addressing is used then). Default: AWS. */
  endpoint?: string
  /** Default: AWS_REGION, else 'us-east-1'. */
  region?: string
  /**
   * Size of every part but the last, in bytes, from 5 MiB to 5 GiB. An upload
   * has at most 10,000 parts, so this bounds its size (maxSize is checked
   * against it, and defaults to it). Default 8 MiB.
   */
  partSize?: number
  /**
   * Passed to the AWS SDK's S3Client as they are (credentials, maxAttempts,
   * requestHandler, and checksum settings, which default to 'WHEN_REQUIRED'
   * here because several S3-compatible servers refuse the SDK's own defaults).
   */
  clientOptions?: Record<string, unknown>
}

/**
 * Bytes in Azure Blob Storage instead of `uploadDir` (the option `azure`):
 * staged as blocks of the upload's block blob, committed when it is finished.
 * Credentials: a connection string (`connectionString`, else the environment's
 * AZURE_STORAGE_CONNECTION_STRING), or the account's `url` with a `credential`
 * from @azure/identity or a StorageSharedKeyCredential.
 */
export interface TusAzureOptions {
  /** The container (it must exist). */
  container: string
  /** Prepended to every blob name: a finished upload is the block blob `<prefix><id>`. '' or ending with '/'. Default ''. */
  prefix?: string
  /**
   * Size of every block but the last, in bytes, up to 4000 MiB. A blob has at
   * most 50,000 blocks, so this bounds an upload's size (maxSize is checked
   * against it, and defaults to it). Default 8 MiB.
   */
  blockSize?: number
  /** A storage account connection string. Default: AZURE_STORAGE_CONNECTION_STRING. */
  connectionString?: string
  /** The account's blob endpoint (e.g. https://acct.blob.core.windows.net), with `credential`; instead of a connection string. */
  url?: string
  /** A TokenCredential (@azure/identity) or StorageSharedKeyCredential, with `url`. */
  credential?: unknown
  /** Passed to the BlobServiceClient as they are (retryOptions, httpClient, proxyOptions...). */
  clientOptions?: Record<string, unknown>
}

/**
 * Options of `app.register(tus, options)`. Checked at register time: a wrong
 * type, a value out of range or an unknown key fails with a TypeError naming
 * the option. docs/reference.md lists them with their defaults.
 */
export interface TusPluginOptions {
  /** URL path the upload endpoint is mounted at (segments of [A-Za-z0-9._~-]; a trailing '/' is dropped). Default '/files'. */
  prefix?: string
  /** Directory holding the uploaded bytes, one file per upload; created if missing. Default './uploads'. Unused with `s3` or `azure`. */
  uploadDir?: string
  /** Store the bytes in S3-compatible object storage instead of `uploadDir`; `@aws-sdk/client-s3` must be installed. Default: none. */
  s3?: TusS3Options
  /** Store the bytes in Azure Blob Storage instead of `uploadDir`; `@azure/storage-blob` must be installed. Default: none. */
  azure?: TusAzureOptions
  /**
   * Metadata database: a SQLite file path (default './uploads.db'), a
   * PostgreSQL connection string (`postgres://...` or `postgresql://...`; the
   * `pg` driver is loaded only then), or a ready Kysely instance (the plugin
   * then neither creates nor destroys it).
   */
  db?: string | Kysely<any>
  /** Connections in the pool the plugin opens for a PostgreSQL connection string (at least 1; an error with any other `db`). Default 10. */
  poolSize?: number
  /**
   * PostgreSQL schema the plugin's tables live in, created when missing (only
   * with a connection string; a plain identifier, at most 63 characters).
   * Default: the connection's search_path (public).
   */
  schema?: string
  /**
   * How one writer per upload is ensured: 'memory' (within this process) or
   * 'database' (a lease row in the table, for several instances on one
   * database; an in-process lock is still taken first). Default 'auto':
   * 'database' on PostgreSQL, 'memory' otherwise.
   */
  locker?: 'auto' | 'memory' | 'database'
  /**
   * With the database locker: how long a lock lasts without renewal, in ms. A
   * holder renews it every quarter of this; a lock held by an instance that died
   * is given up after at most this long. At least 300. Default 10000.
   */
  lockLease?: number
  /**
   * With the database locker: each instance renews a heartbeat row every quarter
   * of this (one small write, whatever the number of uploads), and a lock whose
   * instance has not beaten for this long is free, so the uploads of an instance
   * that died are taken over within this many ms. At least 300. Default 3000.
   */
  instanceTimeout?: number
  /**
   * On `app.close()`: how long requests in flight may go on, in ms. From the
   * start of the close, new requests are answered 503 (Connection: close,
   * Retry-After); bodies still streaming shortly before this timeout are cut,
   * their bytes kept and their offsets committed, and answered 503; then locks
   * are released and onComplete runs still going are handed back. Default 10000.
   */
  shutdownTimeout?: number
  /** Largest upload accepted, in bytes (advertised as Tus-Max-Size; 413 beyond). Default 0: no limit. */
  maxSize?: number
  /** Largest body of a single PATCH or creation-with-upload POST, in bytes (413 beyond). Default 0: no limit. */
  maxChunkSize?: number
  /** Largest Upload-Metadata header accepted, in bytes (400 beyond). Default 4096. */
  maxMetadataSize?: number
  /**
   * Unfinished uploads expire this many ms after their last write (sliding), then
   * answer 410 until the cleanup removes them. Non-zero advertises the expiration
   * extension. Default 0: never.
   */
  expiration?: number
  /**
   * How often expired uploads are removed, in ms. Default: 0 without `expiration`,
   * else min(expiration, 1 hour). 0 disables the timer (`app.tus.cleanupExpired()` still works).
   */
  cleanupInterval?: number
  /** Checksum algorithms advertised and accepted in Upload-Checksum; [] turns the checksum extension off. Default all four. */
  checksumAlgorithms?: ChecksumAlgorithm[]
  /** fsync the bytes of every write before the offset that covers them is committed. Default true. */
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
  /** How many times onComplete is attempted before the delivery is marked 'failed' (at least 1). Default 10. */
  completeHookAttempts?: number
  /** How long a running onComplete holds its claim before another run may take over, in ms (at least 100); renewed every third of it while it runs. Default 30000. */
  completeHookLease?: number
  /** How often due onComplete deliveries are looked for, in ms; 0 disables the timer (`app.tus.runDueCompleteHooks()` still works). Default 5000. */
  completeHookRetryInterval?: number
  /** CORS through @fastify/cors, inside the plugin's scope; `false` leaves CORS to the host app. Default {}: any origin. */
  cors?: TusCorsOptions | false
  /** onCreate handlers, run before those added with `app.tus.addHook`. Default: none. */
  onCreate?: OnCreateHook | OnCreateHook[]
  /** onComplete handlers, run before those added with `app.tus.addHook`. Default: none. */
  onComplete?: OnCompleteHook | OnCompleteHook[]
  /** onTerminate handlers, run before those added with `app.tus.addHook`. Default: none. */
  onTerminate?: OnTerminateHook | OnTerminateHook[]
  /** onProgress handlers. Default: none. */
  onProgress?: OnProgressHook | OnProgressHook[]
  /** onBeforeTerminate handlers. Default: none. */
  onBeforeTerminate?: OnBeforeTerminateHook | OnBeforeTerminateHook[]
  /** onInterrupted handlers. Default: none. */
  onInterrupted?: OnInterruptedHook | OnInterruptedHook[]
  /** onLengthDeclared handlers. Default: none. */
  onLengthDeclared?: OnLengthDeclaredHook | OnLengthDeclaredHook[]
  /** How often onProgress runs at most while a PATCH streams, in ms (at least 10); also how often the IETF draft's 104 progress reports go. Default 1000. */
  progressInterval?: number
  /**
   * Interop versions of the IETF draft "Resumable Uploads for HTTP" served on the
   * same routes, chosen per request (`Upload-Draft-Interop-Version`): 6 (drafts
   * -04/-05: tus-js-client's 'ietf-draft-05', iOS 18.1+), 7 (-06 to -08), 8 (-09 to
   * -11, iOS 26), 9 (-12 and later). Unknown versions are handled as tus 1.0.0.
   * [] turns the draft off. Default [6, 7, 8, 9].
   */
  draftVersions?: Array<6 | 7 | 8 | 9>
  /**
   * Send the draft's `104 (Upload Resumption Supported)` interim responses (the
   * upload's URL at creation; progress reports from interop 8 on, at most 8 per
   * request). Turn off behind a proxy that mishandles 1xx responses (nginx with
   * `proxy_http_version 1.1` takes a 104 for the final answer). Default true.
   */
  draftInterimResponses?: boolean
  /**
   * Prometheus metrics: a prom-client Registry to register them into (get or
   * create by name, so two plugin instances may share one), or `true` for the
   * registry of fastify-metrics registered before this plugin. The global
   * registry is never used unless it is the one given. A name already taken
   * there by a metric the plugin did not create is refused at start.
   * Default: no metrics.
   */
  metrics?: TusMetricsRegistry | true
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

/** What a store may want to know about a new upload's bytes. */
export interface CreateOptions {
  /** The Content-Type its finished bytes should be served with (derived from `filetype` when safe). */
  contentType?: string
  /** The id was chosen by an onCreate handler, not generated: bytes may exist under it already (answer EEXIST). */
  chosenId?: boolean
}
/** Bytes: make room for a new upload. */
export interface ByteCreator {
  /**
   * Create the (empty) bytes of a new upload. When bytes under that id exist
   * already, reject with an error whose `code` is 'EEXIST' (the server answers 409).
   */
  create(id: string, options?: CreateOptions): Promise<void>
}
/** How ByteWriter.write stores a body. */
export interface WriteOptions {
  /** Make the bytes durable (fsync) before the write answers, and before each checkpoint. */
  flush?: boolean
  /** Called after about every `every` bytes, once they are stored (and flushed). */
  checkpoint?: { every: number; at: (bytesWritten: number) => Promise<void> }
  /**
   * The upload's bytes do not exist yet: create them with this write (at offset
   * 0), failing as `create` does (code 'EEXIST') if they do. Saves
   * creation-with-upload a separate create.
   */
  create?: boolean
  /**
   * Asked before each write reaches storage: false means the writer may no
   * longer own the upload (its lock was lost), so nothing more is written and
   * the write answers with the error that stopped it (code 'ELOCKLOST').
   */
  owned?: () => boolean
  /**
   * How many bytes the source delivers if it ends normally (the request's
   * Content-Length), when known. A store that needs it (object storage: a part's
   * length is sent before its bytes) answers a write without it with an error
   * whose code is 'ELENGTHREQUIRED' (411), before reading anything.
   */
  length?: number
  /**
   * The body, if it arrives whole (`length` bytes), is the rest of the upload
   * and will be kept as it is (no checksum is pending): a store may store it
   * straight as the finished upload (object storage: one request instead of a
   * tail and a copy). finish() is still called afterwards.
   */
  completes?: boolean
  /** With `create`: as CreateOptions.contentType. */
  contentType?: string
  /** With `create`: as CreateOptions.chosenId. */
  chosenId?: boolean
}
/** Bytes: append a stream at an offset. */
export interface ByteWriter {
  /** Write `source` starting at `offset`; answers how much reached storage (and the error that stopped it, if any). */
  write(id: string, offset: number, source: AsyncIterable<Buffer>, options?: WriteOptions): Promise<WriteResult>
  /** Cut the stored bytes back to `length` (used to undo a rejected chunk). */
  truncate(id: string, length: number): Promise<void>
}
/** Bytes: the upload is whole. */
export interface ByteFinisher {
  /**
   * Called once every byte is written, before the row records completion: make
   * the bytes the finished upload (object storage: complete the multipart
   * upload). Idempotent; a file on disk has nothing to do.
   */
  finish(id: string, length: number): Promise<void>
}
/** Bytes: read a finished upload, optionally a byte range (inclusive end). */
export interface ByteReader {
  /** The stored bytes, or the inclusive range `start`…`end` of them. */
  createReadStream(id: string, range?: { start: number; end: number }): Readable
  /** Bytes stored for `id`, or null when it has none. */
  size(id: string): Promise<number | null>
}
/** Bytes: remove an upload's bytes; missing bytes are not an error. */
export interface ByteTerminator {
  /** Remove the bytes of `id`. */
  remove(id: string): Promise<void>
}
/** Bytes: join finished partial uploads into a final one, in order. */
export interface ByteConcatenator {
  /** Write the bytes of `partIds`, in order, as the finished bytes of `targetId`; `flush` fsyncs them. */
  concatenate(targetId: string, partIds: string[], options?: { flush?: boolean; contentType?: string }): Promise<void>
}
/** Bytes: what is stored, for reconciling storage with the table after a crash. */
export interface ByteLister {
  /** Every stored upload id with when its bytes last changed. */
  list(): Promise<Array<{ id: string; modifiedAt: Date }>>
}
/** Everything the plugin needs from a byte store. */
export type DataStore = ByteCreator & ByteWriter & ByteFinisher & ByteReader & ByteTerminator & ByteConcatenator & ByteLister & {
  /**
   * The bytes are behind a network (object storage): start-up recovery does not
   * ask for the size of every finished upload, one request each. Default false.
   */
  readonly remote?: boolean
}

/** A row to insert: an upload at offset 0, not complete. Fields as in UploadRecord. */
export interface NewUpload {
  /** The id (already validated). */
  id: string
  /** Total size in bytes, or null while deferred. */
  length: number | null
  /** Decoded metadata, after onCreate. */
  metadata: UploadMetadata
  /** Concatenation role, or null. */
  concat: 'partial' | 'final' | null
  /** A final upload's partial upload ids, in order, else null. */
  parts: string[] | null
  /** First expiry, or null. */
  expiresAt: Date | null
  /** Bytes already stored (creation-with-upload writes the body before the row); default 0. */
  offset?: number
  /** The stored bytes are the whole upload: record it complete (onComplete owed as with advanceOffset). */
  complete?: boolean
}

/** What changes with an offset (UploadRepository.advanceOffset). */
export interface OffsetChanges {
  /** The new expiry (null: none). */
  expiresAt: Date | null
  /** Record completion; onComplete delivery becomes 'pending' unless this is a partial upload. */
  complete: boolean
  /** The upload is a partial one: completion owes no onComplete delivery. */
  partial?: boolean
  /** Also set the length (a final upload whose parts had deferred lengths). */
  length?: number
}

/** Options of `app.tus.list`. */
export interface ListUploadsOptions {
  /** 'finished', 'unfinished' or 'all' (default). */
  status?: 'finished' | 'unfinished' | 'all'
  /** Page size, default 100, clamped to 1…1000. */
  limit?: number
  /** Rows to skip, default 0. Uploads are ordered oldest first. */
  offset?: number
}

/** Metadata: one table of uploads. Offsets move only by compare-and-set. */
export interface UploadRepository {
  /** Insert a new upload; answers the stored record. */
  insert(upload: NewUpload): Promise<UploadRecord>
  /** The upload, or undefined. */
  get(id: string): Promise<UploadRecord | undefined>
  /**
   * Move the offset from `from` to `to` (compare-and-set); false when the offset
   * was no longer `from` or the upload is already complete. With `complete`, the
   * same update records completion, so an upload is never final without saying so.
   */
  advanceOffset(id: string, from: number, to: number, changes: OffsetChanges): Promise<boolean>
  /** Set the length of a deferred-length upload; false when it was already set. */
  declareLength(id: string, length: number): Promise<boolean>
  /** Delete the row; false when there was none. */
  delete(id: string): Promise<boolean>
  /** Uploads oldest first, a page at a time. */
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
  /** Give the lock up. */
  release(): Promise<void>
  /**
   * Whether the lock can still be vouched for, asked before every step that
   * changes stored bytes. False once released or lost (a shared lock whose lease
   * could not be renewed in time: another instance may hold it by now).
   */
  held(): boolean
}
/** What a request for a lock may ask for. */
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
  /** Take the lock of upload `id` at once, or answer null when another holder keeps it. */
  tryAcquire(id: string, request?: LockRequest): Promise<Lock | null>
}

/* ------------------------------------------------------------------ */
/* The `app.tus` decoration.                                           */
/* ------------------------------------------------------------------ */

/** `app.tus`: the uploads as seen from the host application. */
export interface TusDecorator {
  /** Add a lifecycle handler; handlers of one hook run in registration order. Throws a TypeError for an unknown hook or a non-function. */
  addHook<K extends TusHookName>(name: K, handler: TusHooks[K]): void
  /** The upload record; undefined for an unknown id or one outside [A-Za-z0-9_-]{1,100}. Expired uploads not yet removed are included. */
  get(id: string): Promise<UploadRecord | undefined>
  /** Uploads oldest first (createdAt, then id), one page (default 100, at most 1000). */
  list(options?: ListUploadsOptions): Promise<UploadRecord[]>
  /** Read the stored bytes of an upload (finished or not), optionally a range (inclusive end). Rejects with a TusError 404 for an unknown id. */
  createReadStream(id: string, range?: { start: number; end: number }): Promise<Readable>
  /** Remove an upload (row and bytes); runs onTerminate with reason 'server'. False when unknown or busy. */
  delete(id: string): Promise<boolean>
  /** Remove every expired unfinished upload now (skipping any being written); answers how many were removed. */
  cleanupExpired(): Promise<number>
  /** Attempt every onComplete delivery that is due now (normally done by a timer); answers how many it attempted. */
  runDueCompleteHooks(): Promise<number>
  /** The absolute path prefix uploads are served under, e.g. '/files'. */
  readonly prefix: string
  /** True from the moment `app.close()` began: the upload routes answer 503 to new requests (for a health check). */
  readonly draining: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    tus: TusDecorator
  }
}
