/**
 * fastify-tus/client: a TUS 1.0.0 upload client for Node.js, which also speaks
 * the IETF draft "Resumable Uploads for HTTP" (`protocol: 'ietf-draft'`).
 *
 *   import { TusClient } from 'fastify-tus/client'
 *   const client = new TusClient({ endpoint: 'http://127.0.0.1:8080/files' })
 *   const url = await client.upload('./big.iso', { onProgress: (p) => console.log(p.percent) })
 */
export { TusClient, type PreviousUpload, type RequestOptions } from './client.js'
export { Uploader, type ChunkResult } from './uploader.js'
export { tusClient, DEFAULT_CLOSE_TIMEOUT, type TusClientPluginOptions } from './fastify.js'
export {
  TusClientError, TusHttpError, TusNetworkError, TusTimeoutError, TusAbortError, TusUnsupportedError, TusProtocolError
} from './errors.js'
export { isRetryableError, retryDelay, MAX_RETRY_DELAY } from './retry.js'
export type {
  TusClientOptions, TusCloseOptions, UploadOptions, TusProgress, TusTlsOptions, TusRequestInfo, TusResponseInfo, ClientChecksumAlgorithm,
  TusClientProtocol, DraftInteropVersion
} from './options.js'
export type { TusServerInfo, TusUploadInfo } from './protocol.js'
export type { UploadSource } from './source.js'
export { InMemoryURLStorage, type URLStorage, type URLStorageEntry } from './storage/url-storage.js'
export { FileURLStorage, type FileURLStorageOptions } from './storage/file-storage.js'
export { SQLiteURLStorage } from './storage/sqlite-storage.js'
