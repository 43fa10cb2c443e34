// Resume across processes: `fastify-tus upload --resume` is killed with SIGKILL
// mid-upload (no chance to clean up), then run again; the second process finds
// the upload in the state file, sends only what the server lacks, and the
// stored file is byte-exact. Runs the built CLI (dist/).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startServer, tempDir } from './helpers/server.js'
import { head, sleep, waitFor } from './helpers/tus.js'
import { logRequests, sourceFile, storedAt } from './helpers/client-env.js'
import { run, start } from './helpers/client-spawn.js'

const BIN = 'dist/lib/cli/main.js'
const MiB = 1024 * 1024

/** Resolves once the sum of all upload offsets has not changed for 300 ms (at most 10 s). */
async function settled (app: Awaited<ReturnType<typeof startServer>>['app']): Promise<void> {
  const total = async (): Promise<number> => (await app.tus.list({ limit: 1000 })).reduce((sum, u) => sum + u.offset, 0)
  let last = -1
  let stableSince = Date.now()
  await waitFor(async () => {
    const now = await total()
    if (now !== last) { last = now; stableSince = Date.now() }
    return Date.now() - stableSince >= 300
  }, 10_000, 'offsets to settle')
}

interface StateFile { uploads: Record<string, Array<{ uploadUrl: string | null; partialUrls: string[] | null }>> }

for (const variant of [
  { name: 'one upload, no checksum', flags: [] as string[], parallel: false },
  { name: '3 parallel parts with sha256', flags: ['--parallel', '3', '--checksum', 'sha256'], parallel: true }
]) {
  t.test(`SIGKILL mid-upload, then --resume: ${variant.name}`, async (t) => {
    let log!: ReturnType<typeof logRequests>
    let answered = 0
    const server = await startServer(t, {}, (app) => {
      log = logRequests(app)
      // Paces the upload so it can be killed in the middle.
      app.addHook('onRequest', async (request) => { if (request.method === 'PATCH') await sleep(25) })
      app.addHook('onResponse', async (request) => { if (request.method === 'PATCH') answered++ })
    })
    const state = tempDir(t)
    const env = { XDG_STATE_HOME: state }
    const { path, content } = sourceFile(t, 24 * MiB + 12345, 101)
    const args = [BIN, 'upload', '--resume', '--chunk-size', '1m', ...variant.flags, path, server.endpoint]

    const first = start(args, env)
    await waitFor(() => answered >= 6, 30_000, '6 PATCHes answered')
    first.child.kill('SIGKILL')
    const killed = await first.exited
    t.equal(killed.signal, 'SIGKILL', 'the first run was killed')
    t.equal(killed.stdout, '', 'it printed no URL')

    // The server notices the cut connections and settles the PATCHes they carried
    // (keeping what reached disk): wait until the stored offsets stop moving.
    await settled(server.app)
    const saved = JSON.parse(readFileSync(join(state, 'fastify-tus', 'uploads.json'), 'utf8')) as StateFile
    const entries = Object.values(saved.uploads).flat()
    t.equal(entries.length, 1, 'the state file holds the unfinished upload')
    const urls = variant.parallel ? entries[0]!.partialUrls! : [entries[0]!.uploadUrl!]
    t.equal(urls.length, variant.parallel ? 3 : 1)
    let stored = 0
    for (const url of urls) stored += Number((await head(url)).headers['upload-offset'])
    t.ok(stored > 0 && stored < content.length, `the server holds part of it (${stored} of ${content.length} bytes)`)

    const posts = log.count('POST')
    log.patchBytes = 0
    log.postBytes = 0
    const second = await run(args, { env, timeout: 120_000 })
    t.equal(second.code, 0, `the second run succeeded ${second.stderr.slice(-500)}`)
    const url = second.stdout.trimEnd().split('\n').pop()!
    t.equal(log.count('POST') - posts, variant.parallel ? 1 : 0, variant.parallel ? 'only the final upload was created' : 'no new upload was created')
    t.equal(log.patchBytes + log.postBytes, content.length - stored, 'only the remainder was sent')
    if (!variant.parallel) t.equal(url, urls[0], 'the same upload URL')
    t.ok(storedAt(server.uploadDir, url)?.equals(content), 'the stored file is byte-exact')
    const after = JSON.parse(readFileSync(join(state, 'fastify-tus', 'uploads.json'), 'utf8')) as StateFile
    t.same(after.uploads, {}, 'the state entry is gone after success')
  })
}
