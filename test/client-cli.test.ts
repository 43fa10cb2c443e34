// `fastify-tus upload FILE URL`: help, output, flags reaching the server, failures.
// Runs the built CLI (dist/), like a user would.
import t from 'tap'
import { startServer } from './helpers/server.js'
import { idOf } from './helpers/tus.js'
import { logRequests, sourceFile, storedAt } from './helpers/client-env.js'
import { run } from './helpers/client-spawn.js'

const BIN = 'dist/lib/cli/main.js'
const lastLine = (text: string): string => text.trimEnd().split('\n').pop() ?? ''

t.test('--help documents every flag and where --resume keeps its state', async (t) => {
  const help = await run([BIN, 'upload', '--help'])
  t.equal(help.code, 0)
  for (const flag of ['--chunk-size', '--checksum', '--parallel', '--metadata', '--header', '--resume', '--insecure', '--ca', '--cert', '--key', '--json']) {
    t.match(help.stdout, flag, flag)
  }
  t.match(help.stdout, '$XDG_STATE_HOME/fastify-tus/uploads.json')
  t.match(help.stdout, '~/.local/state/fastify-tus/uploads.json')
  const top = await run([BIN, '--help'])
  t.match(top.stdout, /upload\s+upload a file/, 'listed in the top-level help')
})

t.test('an upload: URL last on stdout, JSON progress on a non-terminal stderr, flags reach the server', async (t) => {
  const seen: Array<Record<string, unknown>> = []
  let log!: ReturnType<typeof logRequests>
  const server = await startServer(t, {}, (app) => {
    log = logRequests(app)
    app.addHook('onRequest', async (request) => { seen.push({ ...request.headers }) })
  })
  const { path, content } = sourceFile(t, 700_000, 91, 'report.pdf')
  const result = await run([BIN, 'upload', '--chunk-size', '128k', '--checksum', 'sha512', '--metadata', 'owner=ann', '--metadata', 'note=a=b',
    '--header', 'X-Trace: abc 123', '--header', 'Authorization: Bearer t0k', path, server.endpoint])
  t.equal(result.code, 0, result.stderr)
  const url = lastLine(result.stdout)
  t.match(url, new RegExp(`^${server.endpoint}/[0-9a-f]+$`), 'the last line of stdout is the upload URL')
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored bytes equal the file')
  const record = await server.app.tus.get(idOf(url))
  t.same(record?.metadata, { filename: 'report.pdf', owner: 'ann', note: 'a=b' }, 'filename by default, plus --metadata')
  t.ok(seen.every((h) => h['x-trace'] === 'abc 123' && h.authorization === 'Bearer t0k'), '--header on every request')
  t.ok(seen.filter((h) => h['upload-checksum'] !== undefined).every((h) => String(h['upload-checksum']).startsWith('sha512 ')), '--checksum')
  t.ok(log.patchBytes <= 700_000 && log.requests.length >= 6, '--chunk-size: several requests of 128 KiB')
  const lines = result.stderr.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
  t.ok(lines.length >= 2 && lines.every((l) => l.event === 'progress'), 'stderr: JSON progress lines')
  t.same(lines[lines.length - 1], { event: 'progress', ...lines[lines.length - 1], bytesUploaded: 700_000, bytesTotal: 700_000, percent: 100 }, 'ending at 100 %')
})

t.test('--json and --parallel', async (t) => {
  const server = await startServer(t)
  const { path, content } = sourceFile(t, 400_000, 92)
  const result = await run([BIN, 'upload', '--json', '--parallel', '3', '--chunk-size', '64k', path, server.endpoint])
  t.equal(result.code, 0, result.stderr)
  const lines = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { event: string; url?: string })
  t.ok(lines.slice(0, -1).every((l) => l.event === 'progress'), 'progress objects first')
  const done = lines[lines.length - 1]!
  t.equal(done.event, 'complete')
  t.ok(storedAt(server.uploadDir, done.url!)?.equals(content), 'the last object carries the URL of a byte-exact upload')
  t.equal((await server.app.tus.get(idOf(done.url!)))?.parts?.length, 3, 'in 3 parts')
})

t.test('failures: non-zero exit and a one-line reason', async (t) => {
  const server = await startServer(t, { checksumAlgorithms: ['sha1'] }, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.headers.authorization === 'Bearer bad') await reply.code(403).header('Tus-Resumable', '1.0.0').send('token refused')
    })
  })
  const { path } = sourceFile(t, 10, 93)
  const cases: Array<[string, string[], number, RegExp]> = [
    ['missing file', ['/nonexistent/file.bin', server.endpoint], 1, /ENOENT/],
    ['refused by the server', ['--header', 'Authorization: Bearer bad', path, server.endpoint], 1, /answered 403: token refused/],
    ['nobody listening', ['--retries', '0', path, 'http://127.0.0.1:1/files'], 1, /ECONNREFUSED/],
    ['checksum the server lacks', ['--checksum', 'md5', path, server.endpoint], 1, /checksum md5 .* does not verify it/],
    ['not a tus endpoint', [path, server.endpoint.replace('/files', '/nothing')], 1, /answered 404/],
    ['unknown flag', ['--nope', path, server.endpoint], 2, /nope/],
    ['one positional', [path], 2, /expected <file> and <url>/],
    ['bad size', ['--chunk-size', 'lots', path, server.endpoint], 2, /--chunk-size/],
    ['bad header', ['--header', 'no colon', path, server.endpoint], 2, /--header/],
    ['bad url', [path, 'ftp://x/files'], 2, /<url>/]
  ]
  for (const [label, args, code, reason] of cases) {
    const result = await run([BIN, 'upload', ...args], { timeout: 30_000 })
    t.equal(result.code, code, `${label}: exit ${code}`)
    const first = result.stderr.split('\n')[0]!
    t.match(first, /^fastify-tus: \S/, `${label}: one line on stderr`)
    t.match(first, reason, `${label}: ${first}`)
    t.equal(result.stdout, '', `${label}: nothing on stdout`)
  }
})
