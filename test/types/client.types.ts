// Type tests for fastify-tus/client: compiled (never run) by `npm run typecheck`.
// A line marked @ts-expect-error must fail to compile, or the typecheck fails.
import Fastify from 'fastify'
import {
  TusClient, Uploader, tusClient, FileURLStorage, InMemoryURLStorage, TusHttpError, TusClientError, TusNetworkError, TusTimeoutError, isRetryableError,
  type ChunkResult, type PreviousUpload, type TusClientOptions, type TusCloseOptions, type TusClientPluginOptions, type TusProgress, type TusServerInfo, type TusUploadInfo, type URLStorage,
  type TusClientProtocol, type DraftInteropVersion
} from '../../lib/client/index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<T extends true> (): T | void {}

const client = new TusClient({ endpoint: 'http://127.0.0.1:8080/files', chunkSize: 1 << 20, checksum: 'sha256', urlStorage: new InMemoryURLStorage() })
expectType<Equal<ReturnType<typeof client.upload>, Promise<string>>>()
expectType<Equal<ReturnType<typeof client.resume>, Promise<string>>>()
expectType<Equal<ReturnType<typeof client.createUploader>, Promise<Uploader>>>()
expectType<Equal<ReturnType<typeof client.findPreviousUploads>, Promise<PreviousUpload[]>>>()
expectType<Equal<ReturnType<typeof client.createPartialUpload>, Promise<string>>>()
expectType<Equal<ReturnType<typeof client.createFinalUpload>, Promise<string>>>()
expectType<Equal<ReturnType<typeof client.getServerInfo>, Promise<TusServerInfo>>>()
expectType<Equal<ReturnType<typeof client.getUploadInfo>, Promise<TusUploadInfo>>>()
expectType<Equal<ReturnType<typeof client.delete>, Promise<void>>>()
expectType<Equal<ReturnType<typeof client.close>, Promise<void>>>()
expectType<Equal<Parameters<typeof client.close>, [options?: TusCloseOptions]>>()
await client.close()
await client.close({ timeout: 10_000 })
// @ts-expect-error the close timeout is a number of ms
await client.close({ timeout: '10s' })
// @ts-expect-error close takes no unknown option
await client.close({ signal: AbortSignal.timeout(1000) })

await client.upload(Buffer.from('x'), {
  metadata: { filename: 'x.txt' },
  parallel: 2,
  keepUrl: true,
  onProgress: (p) => { expectType<Equal<typeof p, TusProgress>>(); expectType<Equal<typeof p.percent, number | null>>() }
})
const uploader = await client.createUploader('./file.bin', { url: 'http://127.0.0.1:8080/files/abc' })
expectType<Equal<Awaited<ReturnType<typeof uploader.uploadChunk>>, ChunkResult>>()
expectType<Equal<typeof uploader.url, string | null>>()
expectType<Equal<typeof uploader.length, number | null>>()
const info = await client.getUploadInfo('abc')
expectType<Equal<typeof info.offset, number | null>>()
expectType<Equal<typeof info.metadata, Record<string, string>>>()

const storage: URLStorage = new FileURLStorage('./urls.json', { lockTimeout: 5000, staleLockAge: 5000 })
void storage

try { await client.delete('abc') } catch (err) {
  if (err instanceof TusHttpError) { const status: number = err.statusCode; const body: string = err.body; void status; void body }
  if (err instanceof TusTimeoutError) { const isNetwork: TusNetworkError = err; void isNetwork }
  if (err instanceof TusClientError) { const code: string = err.code; void code }
}

// The decorator.
const app = Fastify()
await app.register(tusClient, { endpoint: 'https://uploads.example/files' })
expectType<Equal<typeof app.tusClient, TusClient>>()

// @ts-expect-error endpoint is required
const noEndpoint: TusClientOptions = { chunkSize: 1024 }
// @ts-expect-error unknown checksum algorithm
const badChecksum: TusClientOptions = { endpoint: 'http://x/files', checksum: 'crc32' }
// @ts-expect-error chunkSize is a number
const badChunk: TusClientOptions = { endpoint: 'http://x/files', chunkSize: '1m' }
// @ts-expect-error unknown option key
const badKey: TusClientOptions = { endpoint: 'http://x/files', retries: 3 }
void noEndpoint; void badChecksum; void badChunk; void badKey
// @ts-expect-error metadata values are strings
await client.upload('./file.bin', { metadata: { size: 5 } })
// @ts-expect-error resume takes no parallel option
await client.resume('./file.bin', 'http://x/files/abc', { parallel: 2 })
// @ts-expect-error the decorator checks its options
await app.register(tusClient, { endpoint: 5 })
await app.register(tusClient, { endpoint: 'https://uploads.example/files', closeTimeout: 5000 })
const pluginOptions: TusClientPluginOptions = { endpoint: 'https://uploads.example/files', closeTimeout: 0 }
void pluginOptions
// @ts-expect-error closeTimeout is a number of ms
await app.register(tusClient, { endpoint: 'https://uploads.example/files', closeTimeout: '10s' })

// The IETF draft mode.
const draft = new TusClient({ endpoint: 'http://127.0.0.1:8080/files', protocol: 'ietf-draft', draftVersion: 8 })
expectType<Equal<typeof draft.options.protocol, TusClientProtocol>>()
expectType<Equal<typeof draft.options.draftVersion, DraftInteropVersion | undefined>>()
expectType<Equal<TusClientProtocol, 'tus' | 'ietf-draft'>>()
expectType<Equal<DraftInteropVersion, 6 | 7 | 8 | 9>>()
expectType<Equal<Parameters<typeof isRetryableError>, [error: unknown, protocol?: TusClientProtocol]>>()
await draft.upload(Buffer.from('x'), { metadata: { filename: 'x.txt', filetype: 'text/plain' } })
await app.register(tusClient, { endpoint: 'https://uploads.example/files', protocol: 'ietf-draft', draftVersion: 6, closeTimeout: 1000 })
// @ts-expect-error draftVersion is 6, 7, 8 or 9
const badVersion: TusClientOptions = { endpoint: 'http://x/files', protocol: 'ietf-draft', draftVersion: 10 }
// @ts-expect-error protocol is 'tus' or 'ietf-draft'
const badProtocol: TusClientOptions = { endpoint: 'http://x/files', protocol: 'rufh' }
// @ts-expect-error draftVersion is a number
const stringVersion: TusClientOptions = { endpoint: 'http://x/files', protocol: 'ietf-draft', draftVersion: '9' }
void badVersion; void badProtocol; void stringVersion
