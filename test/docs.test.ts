/**
 * The reference docs against the code, so they cannot drift apart:
 * - every plugin option resolveOptions accepts is in the options table of
 *   docs/reference.md with the default the code uses, and the table names no
 *   option the code rejects;
 * - every flag of `fastify-tus serve` and `fastify-tus upload` is in its table
 *   (and the other way round), with the default the parser uses;
 * - every member of `app.tus` is in the decorator table (and the other way round);
 * - every status code the protocol layer answers is in the status table (and
 *   the other way round); every advertised extension is in the compliance table;
 * - every test file the docs name exists, and every compliance row names one;
 * - links between the markdown files point at files and headings that exist.
 * The parsing is deliberately plain: tables are `| a | b |` lines under a heading.
 */
import t, { type Test } from 'tap'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { PLUGIN_OPTION_NAMES, resolveOptions } from '../lib/options.js'
import { SERVE_FLAGS, parseServeArgs } from '../lib/cli/serve.js'
import { UPLOAD_FLAGS, parseUploadArgs } from '../lib/cli/upload.js'
import { createDecorator } from '../lib/decorator.js'
import { EXTENSIONS } from '../lib/protocol/discover.js'
import { HookRegistry } from '../lib/hooks/registry.js'
import { DEFAULT_CHUNK_SIZE } from '../lib/client/options.js'
import type { TusContext } from '../lib/protocol/context.js'
import type { TusPluginOptions } from '../types/index.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const REFERENCE = 'docs/reference.md'
const reference = readFileSync(join(ROOT, REFERENCE), 'utf8')

/** Fails with `message` unless `ok`; silent when it holds, so the output lists only what is wrong. */
function expect (t: Test, ok: boolean, message: string): void {
  if (!ok) t.fail(message)
}

/* ----------------------------- markdown ----------------------------- */

/** The text under `heading` (a whole line, e.g. '## Plugin options') up to the next heading of the same or a higher level. */
function section (markdown: string, heading: string): string {
  const lines = markdown.split('\n')
  const start = lines.findIndex((line) => line.trim() === heading)
  if (start < 0) throw new Error(`${REFERENCE} has no heading "${heading}"`)
  const level = /^#+/.exec(heading)![0].length
  const end = lines.findIndex((line, i) => i > start && new RegExp(`^#{1,${level}} `).test(line))
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n')
}

/** The body rows of the first table in `text`, as trimmed cells (`\|` unescaped). */
function firstTable (text: string): string[][] {
  const lines = text.split('\n')
  const start = lines.findIndex((line) => line.trimStart().startsWith('|'))
  if (start < 0) return []
  const rows: string[][] = []
  for (const line of lines.slice(start)) {
    if (!line.trimStart().startsWith('|')) break
    rows.push(line.trim().replace(/^\|/, '').replace(/\|$/, '').split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, '|')))
  }
  // Drop the header row and the |---| separator.
  return rows.slice(2)
}

/** The contents of the `code spans` of a cell. */
const codeSpans = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!)

/**
 * A documented default: 'none' (the option is unset), a literal in the cell's
 * first code span (`'/files'`, `10000`, `true`, `['sha1']`, `{}`), or free text.
 */
type DocDefault = { kind: 'none' } | { kind: 'literal'; value: unknown; source: string } | { kind: 'text' }
function parseDefault (cell: string): DocDefault {
  if (/^none\b/.test(cell)) return { kind: 'none' }
  const first = /^`([^`]+)`/.exec(cell)?.[1]
  if (first === undefined) return { kind: 'text' }
  const json = first
    .replace(/'([^'\\]*)'/g, (_m, s: string) => JSON.stringify(s))
    .replace(/(\d)_(?=\d)/g, '$1')
  try {
    return { kind: 'literal', value: JSON.parse(json), source: first }
  } catch {
    return { kind: 'text' }
  }
}

/* ------------------------------ options ----------------------------- */

t.test(`plugin options: ${REFERENCE} lists every option with the code's default`, async (t) => {
  const rows = firstTable(section(reference, '## Plugin options'))
  t.ok(rows.length > 0, `${REFERENCE} has an options table under "## Plugin options"`)
  const documented = new Map<string, string>()
  for (const row of rows) {
    for (const name of codeSpans(row[0] ?? '')) documented.set(name, row[2] ?? '')
  }

  const code = new Set<string>(PLUGIN_OPTION_NAMES)
  for (const name of code) expect(t, documented.has(name), `option ${name} is in the code but not in ${REFERENCE}`)
  for (const name of documented.keys()) expect(t, code.has(name), `option ${name} is in ${REFERENCE} but the code rejects it`)

  // The exported list is the one resolveOptions enforces.
  for (const name of code) t.doesNotThrow(() => resolveOptions({ [name]: undefined } as TusPluginOptions), `resolveOptions accepts ${name}`)
  t.throws(() => resolveOptions({ notAnOption: 1 } as TusPluginOptions), /unknown option "notAnOption"/, 'resolveOptions rejects a key outside the list')

  const resolved = resolveOptions({}) as unknown as Record<string, unknown>
  // Defaults that depend on other options or on the database: checked against the code, and their wording in the docs.
  const derived: Record<string, { doc: RegExp, check: () => void }> = {
    locker: {
      doc: /^`'auto'`: `'database'` on PostgreSQL, else `'memory'`$/,
      // 'auto' is the code's "decided once the database is open" (lib/index.ts: database on PostgreSQL, else memory).
      check: () => t.equal(resolved.locker, 'auto', 'locker defaults to auto (lib/index.ts: database on PostgreSQL, memory otherwise)')
    },
    cleanupInterval: {
      doc: /^`0` without `expiration`, else `min\(expiration, 3600000\)`$/,
      check: () => {
        t.equal(resolveOptions({}).cleanupInterval, 0, 'cleanupInterval is 0 without expiration')
        t.equal(resolveOptions({ expiration: 60_000 }).cleanupInterval, 60_000, 'cleanupInterval is the expiration when shorter than an hour')
        t.equal(resolveOptions({ expiration: 7_200_000 }).cleanupInterval, 3_600_000, 'cleanupInterval is at most an hour')
      }
    }
  }

  for (const [name, cell] of documented) {
    if (!code.has(name)) continue
    const rule = derived[name]
    if (rule !== undefined) {
      expect(t, rule.doc.test(cell), `option ${name}: the default in ${REFERENCE} should read like ${String(rule.doc)}, got "${cell}"`)
      rule.check()
      continue
    }
    const expected = resolved[name]
    const doc = parseDefault(cell)
    if (expected === undefined) {
      expect(t, doc.kind === 'none', `option ${name} has no default in the code, but ${REFERENCE} gives "${cell}" (should start with "none")`)
    } else if (doc.kind !== 'literal') {
      t.fail(`option ${name}: the default in ${REFERENCE} should start with the code's default ${JSON.stringify(expected)} in backticks, got "${cell}"`)
    } else {
      expect(t, isDeepStrictEqual(doc.value, expected), `option ${name}: ${REFERENCE} says the default is ${doc.source}, the code uses ${JSON.stringify(expected)}`)
    }
  }
  t.pass(`${code.size} options: names and defaults compared with ${REFERENCE}`)
})

/* -------------------------------- CLI -------------------------------- */

/** `--name` and `-x` flags named in the first cell of each row. */
function documentedFlags (rows: string[][]): Map<string, string> {
  const flags = new Map<string, string>()
  for (const row of rows) {
    const cell = row[0] ?? ''
    for (const m of cell.matchAll(/--[a-z][a-z0-9-]*/g)) flags.set(m[0], row[1] ?? '')
    for (const m of cell.matchAll(/(?<![\w-])-([a-z])\b/g)) flags.set(m[0], row[1] ?? '')
  }
  return flags
}

function codeFlags (config: Readonly<Record<string, { readonly type: string; readonly short?: string }>>): Set<string> {
  const flags = new Set<string>()
  for (const [name, option] of Object.entries(config)) {
    flags.add(`--${name}`)
    if (option.short !== undefined) flags.add(`-${option.short}`)
  }
  return flags
}

function compareFlags (t: Test, command: string, code: Set<string>, documented: Map<string, string>): void {
  t.ok(documented.size > 0, `${REFERENCE} has a flags table for \`${command}\``)
  for (const flag of code) expect(t, documented.has(flag), `flag ${flag} is accepted by \`${command}\` but not in ${REFERENCE}`)
  for (const flag of documented.keys()) expect(t, code.has(flag), `flag ${flag} is in ${REFERENCE} but \`${command}\` rejects it`)
  t.pass(`${code.size} flags of \`${command}\` compared with ${REFERENCE}`)
}

function compareDefaults (t: Test, command: string, documented: Map<string, string>, defaults: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(defaults)) {
    const flag = `--${name}`
    const cell = documented.get(flag)
    if (cell === undefined) continue // reported above
    expect(t, codeSpans(cell)[0] === String(value), `\`${command} ${flag}\`: ${REFERENCE} says the default is "${cell}", the code uses ${String(value)}`)
  }
  t.pass(`defaults of ${Object.keys(defaults).join(', ')} compared with ${REFERENCE}`)
}

t.test('fastify-tus serve: every flag documented, with its default', async (t) => {
  const documented = documentedFlags(firstTable(section(reference, '### `fastify-tus serve`')))
  compareFlags(t, 'fastify-tus serve', codeFlags(SERVE_FLAGS), documented)

  const config = parseServeArgs([])
  if (config === 'help') throw new Error('unreachable')
  const plugin = resolveOptions(config.plugin)
  compareDefaults(t, 'fastify-tus serve', documented, {
    host: config.host,
    port: config.port,
    'base-path': plugin.prefix,
    'upload-dir': plugin.uploadDir,
    'db-path': plugin.db,
    db: plugin.db,
    'db-pool-size': plugin.poolSize,
    'lock-lease': plugin.lockLease / 1000,
    'max-size': plugin.maxSize,
    'max-chunk-size': plugin.maxChunkSize,
    'upload-expiry': plugin.expiration / 1000,
    'checksum-algorithms': plugin.checksumAlgorithms.join(','),
    'idle-timeout': config.idleTimeout,
    'log-level': config.logLevel
  })
})

t.test('fastify-tus upload: every flag documented, with its default', async (t) => {
  const documented = documentedFlags(firstTable(section(reference, '### `fastify-tus upload`')))
  compareFlags(t, 'fastify-tus upload', codeFlags(UPLOAD_FLAGS), documented)

  const config = parseUploadArgs(['file.bin', 'http://127.0.0.1:8080/files'])
  if (config === 'help') throw new Error('unreachable')
  const chunkSize = config.client.chunkSize ?? DEFAULT_CHUNK_SIZE
  compareDefaults(t, 'fastify-tus upload', documented, {
    'chunk-size': chunkSize % 2 ** 20 === 0 ? `${chunkSize / 2 ** 20}m` : String(chunkSize),
    parallel: config.upload.parallel,
    retries: config.client.maxRetries,
    timeout: (config.client.timeout ?? 0) / 1000
  })
  t.same(config.upload.metadata, { filename: 'file.bin' }, '--metadata defaults to filename=<base name>')
  expect(t, /filename=/.test(documented.get('--metadata') ?? ''), `${REFERENCE} should give filename=<name> as the --metadata default`)
})

/* ----------------------------- decorator ---------------------------- */

t.test('app.tus: every decorator member documented', async (t) => {
  const rows = firstTable(section(reference, '## The `app.tus` decorator'))
  const documented = new Map(rows.map((row) => [codeSpans(row[0] ?? '')[0] ?? '', row[1] ?? '']))
  // createDecorator reads only options.prefix until a member is called.
  const decorator = createDecorator({ options: { prefix: '/files' } } as unknown as TusContext)
  const members = new Set(Object.keys(decorator))
  t.ok(members.size > 0, 'the decorator has members')
  for (const name of members) expect(t, documented.has(name), `app.tus.${name} is on the decorator (lib/decorator.ts) but not in ${REFERENCE}`)
  for (const [name, signature] of documented) {
    expect(t, members.has(name), `app.tus.${name} is in ${REFERENCE} but not on the decorator`)
    expect(t, new RegExp(`^(readonly )?${name}\\b`).test(codeSpans(signature)[0] ?? ''), `the signature given for app.tus.${name} in ${REFERENCE} does not start with ${name}`)
  }
  t.pass(`${members.size} members of app.tus compared with ${REFERENCE}`)
})

t.test('hooks: every hook the registry takes has its section', async (t) => {
  const registry = new HookRegistry()
  for (const name of ['onCreate', 'onComplete', 'onTerminate'] as const) {
    t.doesNotThrow(() => registry.add(name, (() => {}) as never), `${name} is a hook`)
    t.doesNotThrow(() => section(reference, `### ${name}`), `${REFERENCE} has a "### ${name}" section`)
  }
  t.throws(() => registry.add('onFinish' as never, (() => {}) as never), /unknown hook/, 'there are no other hooks')
})

/* --------------------------- protocol facts -------------------------- */

t.test('status codes: the table and lib/protocol agree', async (t) => {
  const dir = join(ROOT, 'lib/protocol')
  const sources = [...readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f)), join(ROOT, 'lib/decorator.ts')]
  const code = new Set<number>()
  for (const file of sources) {
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(/new TusError\((\d{3})|\.code\((\d{3})\)|status = (\d{3})|status: (\d{3})/g)) code.add(Number(m[1] ?? m[2] ?? m[3] ?? m[4]))
  }
  t.ok(code.size > 10, 'status codes found in lib/protocol')
  const documented = new Set(firstTable(section(reference, '## Status codes')).map((row) => Number(row[0])))
  for (const status of code) expect(t, documented.has(status), `status ${status} is answered by lib/protocol but not in the status table of ${REFERENCE}`)
  for (const status of documented) expect(t, code.has(status), `status ${status} is in the status table of ${REFERENCE} but lib/protocol never answers it`)
  t.pass(`statuses ${[...code].sort().join(', ')} compared with ${REFERENCE}`)
})

t.test('compliance table: every extension, every row proven by a test file that exists', async (t) => {
  const rows = firstTable(section(reference, '## Protocol compliance'))
  t.ok(rows.length > 0, `${REFERENCE} has a compliance table`)
  const named = new Set(rows.flatMap((row) => codeSpans(row[0] ?? '')))
  for (const extension of EXTENSIONS) expect(t, named.has(extension), `extension ${extension} is advertised (lib/protocol/discover.ts) but not in the compliance table`)
  for (const name of named) {
    if (/^[a-z-]+$/.test(name)) expect(t, (EXTENSIONS as readonly string[]).includes(name), `the compliance table names extension ${name}, which the server does not advertise`)
  }
  for (const row of rows) {
    // The last column names the tests (columns before it say per store where it holds).
    const files = codeSpans(row.at(-1) ?? '').filter((span) => span.startsWith('test/'))
    expect(t, files.length > 0, `compliance row "${row[0]}" names no test file`)
    for (const file of files) expect(t, existsSync(join(ROOT, file)), `compliance row "${row[0]}" names ${file}, which does not exist`)
  }
  t.pass(`${rows.length} compliance rows and ${EXTENSIONS.length} extensions checked`)
})

/* ------------------------------ markdown ----------------------------- */

const markdownFiles = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]

t.test('every test file named in the docs exists', async (t) => {
  for (const file of markdownFiles) {
    const text = readFileSync(join(ROOT, file), 'utf8')
    for (const m of text.matchAll(/\btest\/[\w./-]+\.test\.ts\b/g)) expect(t, existsSync(join(ROOT, m[0])), `${file} names ${m[0]}, which does not exist`)
  }
  t.pass(`test files named in ${markdownFiles.join(', ')} checked`)
})

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors (markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    const m = fenced ? null : /^#{1,6} (.*)$/.exec(line)
    if (m === null) continue
    const base = m[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-')
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n === 0 ? base : `${base}-${n}`)
  }
  return out
}

t.test('links between the markdown files resolve', async (t) => {
  for (const file of markdownFiles) {
    const text = readFileSync(join(ROOT, file), 'utf8')
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!
      if (/^[a-z]+:/.test(target)) continue // http(s) and other schemes
      const [path = '', anchor] = target.split('#')
      const targetFile = path === '' ? file : join(dirname(file), path)
      // Only markdown targets are checked: examples and sources are written by others in parallel.
      if (!targetFile.endsWith('.md')) continue
      if (!existsSync(join(ROOT, targetFile))) {
        t.fail(`${file} links to ${target}, but ${targetFile} does not exist`)
        continue
      }
      if (anchor !== undefined) {
        expect(t, anchors(readFileSync(join(ROOT, targetFile), 'utf8')).has(anchor), `${file} links to ${target}, but ${targetFile} has no heading with anchor #${anchor}`)
      }
    }
  }
  t.pass(`links in ${markdownFiles.join(', ')} checked`)
})
