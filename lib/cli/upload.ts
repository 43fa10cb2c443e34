/** `fastify-tus upload FILE URL`: send a file to any tus server (or IETF draft server), resumably. */
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { basename, isAbsolute, join } from 'node:path'
import { parseArgs } from 'node:util'
import { FileURLStorage, TusAbortError, TusClient, TusHttpError, type ClientChecksumAlgorithm, type DraftInteropVersion, type TusClientOptions, type TusProgress, type UploadOptions } from '../client/index.js'

export const UPLOAD_HELP = `Usage: fastify-tus upload [options] <file> <url>

Uploads <file> (or - for standard input) to the tus endpoint <url>, e.g.
http://127.0.0.1:8080/files, and prints the upload URL.

Options:
  --protocol <name>          tus (default) or ietf-draft: the IETF draft "Resumable Uploads
                             for HTTP" (no --checksum or --parallel with it)
  --draft-version <n>        with --protocol ietf-draft: Upload-Draft-Interop-Version, 6 to 9
                             (default 9)
  --chunk-size <size>        bytes per request, e.g. 4m or 512k (default 1m)
  --checksum <algorithm>     send Upload-Checksum with every chunk: sha1, sha256, sha512 or md5
  --parallel <n>             send the file as <n> partial uploads at once, then join them
  --metadata <key=value>     Upload-Metadata entry, repeatable (default: filename=<name of file>);
                             with ietf-draft, filename and filetype go as Content-Disposition
                             and Content-Type
  --header <'Name: value'>   extra request header, repeatable (e.g. 'Authorization: Bearer ...')
  --resume                   remember the upload and continue it if this command is run again
                             for the same file (same path, size and modification time). State:
                             $XDG_STATE_HOME/fastify-tus/uploads.json, or
                             ~/.local/state/fastify-tus/uploads.json without XDG_STATE_HOME
  --retries <n>              retries of one step before giving up (default 5)
  --timeout <seconds>        fail a request that moves no data for this long (default 30)
  --insecure                 do not verify the server's TLS certificate
  --ca <file>                PEM certificate(s) of the authority to trust for https
  --cert <file>              PEM client certificate, for servers that require one
  --key <file>               PEM private key of --cert
  --json                     write progress and the result to stdout as JSON, one object a line
  -h, --help                 show this help

Output: progress on stderr, one line updated in place on a terminal, else one
JSON object a line. On success the last line of stdout is the upload URL (with
--json: {"event":"complete","url":...}).
Exit status: 0 uploaded, 1 failed, 2 bad usage, 130 interrupted (Ctrl-C; with
--resume, run the same command again to continue).
`

export class UploadUsageError extends Error {}

export interface UploadConfig {
  file: string
  client: TusClientOptions
  upload: Pick<UploadOptions, 'metadata' | 'parallel'>
  /** Where --resume keeps its state, or undefined without --resume. */
  statePath: string | undefined
  json: boolean
}

const SIZE = /^(\d+)([kmg]?)(i?b)?$/i
const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }

function parseSize (value: string, flag: string): number {
  const match = SIZE.exec(value.trim())
  const n = match === null ? NaN : Number(match[1]) * UNITS[match[2]!.toLowerCase()]!
  if (!Number.isSafeInteger(n) || n < 1) throw new UploadUsageError(`${flag} must be a positive size like 1048576, 512k or 4m, got "${value}"`)
  return n
}

function parseCount (value: string | undefined, flag: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!/^\d+$/.test(value) || n < min || n > max) throw new UploadUsageError(`${flag} must be an integer from ${min} to ${max}, got "${value}"`)
  return n
}

/** $XDG_STATE_HOME/fastify-tus/uploads.json; the spec says a relative XDG_STATE_HOME is to be ignored. */
export function defaultStatePath (env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME !== undefined && isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state')
  return join(base, 'fastify-tus', 'uploads.json')
}

/** The flags `fastify-tus upload` accepts (node:util parseArgs options); exported for the docs test. */
export const UPLOAD_FLAGS = {
  protocol: { type: 'string' },
  'draft-version': { type: 'string' },
  'chunk-size': { type: 'string' },
  checksum: { type: 'string' },
  parallel: { type: 'string' },
  metadata: { type: 'string', multiple: true },
  header: { type: 'string', multiple: true },
  resume: { type: 'boolean' },
  retries: { type: 'string' },
  timeout: { type: 'string' },
  insecure: { type: 'boolean' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' }
} as const

export function parseUploadArgs (argv: string[]): UploadConfig | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: UPLOAD_FLAGS
  })
  if (values.help === true) return 'help'
  if (positionals.length !== 2) throw new UploadUsageError(`expected <file> and <url>, got ${positionals.length} argument${positionals.length === 1 ? '' : 's'}`)
  const [file, url] = positionals as [string, string]
  try {
    const parsed = new URL(url)
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http')
  } catch {
    throw new UploadUsageError(`<url> must be an http:// or https:// URL, got "${url}"`)
  }
  const checksum = values.checksum?.toLowerCase()
  if (checksum !== undefined && !['sha1', 'sha256', 'sha512', 'md5'].includes(checksum)) throw new UploadUsageError(`--checksum must be sha1, sha256, sha512 or md5, got "${values.checksum}"`)

  const metadata: Record<string, string> = file === '-' ? {} : { filename: basename(file) }
  for (const pair of values.metadata ?? []) {
    const at = pair.indexOf('=')
    const key = at < 0 ? '' : pair.slice(0, at)
    if (!/^[^\s,=]+$/.test(key)) throw new UploadUsageError(`--metadata must be key=value with a key free of spaces and commas, got "${pair}"`)
    metadata[key] = pair.slice(at + 1)
  }
  const headers: Record<string, string> = {}
  for (const line of values.header ?? []) {
    const at = line.indexOf(':')
    const name = at < 0 ? '' : line.slice(0, at).trim()
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new UploadUsageError(`--header must be 'Name: value', got "${line}"`)
    headers[name] = line.slice(at + 1).trim()
  }
  const readPem = (path: string | undefined, flag: string): Buffer | undefined => {
    if (path === undefined) return undefined
    try {
      return readFileSync(path)
    } catch (err) {
      throw new UploadUsageError(`${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
  }
  if ((values.cert === undefined) !== (values.key === undefined)) throw new UploadUsageError('--cert and --key go together')
  const tls = {
    ...(values.insecure === true ? { rejectUnauthorized: false } : {}),
    ...(values.ca === undefined ? {} : { ca: readPem(values.ca, '--ca') }),
    ...(values.cert === undefined ? {} : { cert: readPem(values.cert, '--cert'), key: readPem(values.key, '--key') })
  }
  if (values.resume === true && file === '-') throw new UploadUsageError('--resume needs a file: standard input cannot be read again')
  const protocol = values.protocol ?? 'tus'
  if (protocol !== 'tus' && protocol !== 'ietf-draft') throw new UploadUsageError(`--protocol must be tus or ietf-draft, got "${protocol}"`)
  const parallel = parseCount(values.parallel, '--parallel', 1, 1, 100)
  let draftVersion: DraftInteropVersion | undefined
  if (protocol === 'ietf-draft') {
    draftVersion = parseCount(values['draft-version'], '--draft-version', 9, 6, 9) as DraftInteropVersion
    if (checksum !== undefined) throw new UploadUsageError('--checksum is tus only: the IETF draft has no checksums')
    if (parallel > 1) throw new UploadUsageError('--parallel is tus only: the IETF draft has no concatenation')
  } else if (values['draft-version'] !== undefined) {
    throw new UploadUsageError('--draft-version needs --protocol ietf-draft')
  }

  return {
    file,
    client: {
      endpoint: url,
      ...(protocol === 'ietf-draft' ? { protocol, draftVersion } : {}),
      chunkSize: values['chunk-size'] === undefined ? undefined : parseSize(values['chunk-size'], '--chunk-size'),
      checksum: checksum as ClientChecksumAlgorithm | undefined,
      headers,
      maxRetries: parseCount(values.retries, '--retries', 5, 0, 1000),
      timeout: parseCount(values.timeout, '--timeout', 30, 0, 86_400) * 1000,
      tls
    },
    upload: { metadata, parallel },
    statePath: values.resume === true ? defaultStatePath() : undefined,
    json: values.json === true
  }
}

/* ------------------------------ output ------------------------------ */

export function formatBytes (n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = n / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`
}

export function formatDuration (seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '--:--'
  const s = Math.round(seconds)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const pad = (x: number): string => String(x).padStart(2, '0')
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`
}

/** One human line: "12.3 MiB / 100 MiB  12.3%  4.50 MiB/s  ETA 00:20". */
export function progressLine (p: TusProgress): string {
  const total = p.bytesTotal === null ? '?' : formatBytes(p.bytesTotal)
  const percent = p.percent === null ? '' : `  ${p.percent.toFixed(1)}%`
  return `${formatBytes(p.bytesUploaded)} / ${total}${percent}  ${formatBytes(Math.round(p.speed))}/s  ETA ${formatDuration(p.eta)}`
}

/** Progress is written at most this often (and always at the end). */
const PROGRESS_INTERVAL_MS = 250

type Reporter = { progress: (p: TusProgress) => void; end: () => void }

function progressReporter (json: boolean): Reporter {
  let lastWrite = 0
  let pending: TusProgress | undefined
  const tty = !json && process.stderr.isTTY === true
  const write = (p: TusProgress): void => {
    if (json) process.stdout.write(JSON.stringify({ event: 'progress', ...p }) + '\n')
    else if (tty) process.stderr.write(`\r\x1b[2K${progressLine(p)}`)
    else process.stderr.write(JSON.stringify({ event: 'progress', ...p }) + '\n')
  }
  return {
    progress (p) {
      pending = p
      const now = Date.now()
      if (now - lastWrite < PROGRESS_INTERVAL_MS && p.bytesUploaded !== p.bytesTotal) return
      lastWrite = now
      pending = undefined
      write(p)
    },
    end () {
      if (pending !== undefined) write(pending)
      if (tty && lastWrite > 0) process.stderr.write('\n')
    }
  }
}

/* ------------------------------ command ----------------------------- */

/** Runs the command; answers the exit status. Never throws for an upload failure. */
export async function upload (argv: string[]): Promise<number> {
  let config: UploadConfig | 'help'
  try {
    config = parseUploadArgs(argv)
  } catch (err) {
    process.stderr.write(`fastify-tus: ${(err as Error).message}\nRun "fastify-tus upload --help" for usage.\n`)
    return 2
  }
  if (config === 'help') {
    process.stdout.write(UPLOAD_HELP)
    return 0
  }

  const client = new TusClient(config.client)
  const controller = new AbortController()
  let interrupts = 0
  const onSigint = (): void => {
    // The first Ctrl-C stops cleanly (the server keeps what it has); a second one does not wait.
    if (++interrupts > 1) process.exit(130)
    controller.abort()
  }
  process.on('SIGINT', onSigint)
  const reporter = progressReporter(config.json)
  try {
    const url = await client.upload(config.file === '-' ? process.stdin : config.file, {
      ...config.upload,
      signal: controller.signal,
      onProgress: (p) => reporter.progress(p),
      ...(config.statePath === undefined ? {} : { urlStorage: new FileURLStorage(config.statePath) })
    })
    reporter.end()
    process.stdout.write(config.json ? JSON.stringify({ event: 'complete', url }) + '\n' : url + '\n')
    return 0
  } catch (err) {
    reporter.end()
    if (err instanceof TusAbortError) {
      process.stderr.write(`fastify-tus: upload interrupted${config.statePath === undefined ? '' : '; run the same command again to continue'}\n`)
      return 130
    }
    process.stderr.write(`fastify-tus: ${oneLine(err)}\n`)
    return 1
  } finally {
    process.off('SIGINT', onSigint)
    client.close()
  }
}

function oneLine (err: unknown): string {
  const message = err instanceof TusHttpError
    ? `${err.method} ${err.url} answered ${err.statusCode}${err.body.trim() === '' ? '' : `: ${err.body.trim()}`}`
    : (err as Error)?.message ?? String(err)
  return message.replace(/\s*[\r\n]+\s*/g, ' ').slice(0, 1000)
}
