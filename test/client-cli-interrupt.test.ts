// `fastify-tus upload --resume`: Ctrl-C (SIGINT) stops cleanly with exit 130, and
// running the same command again continues where it stopped. Runs the built CLI (dist/).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startServer, tempDir } from './helpers/server.js'
import { head, sleep, waitFor } from './helpers/tus.js'
import { logRequests, sourceFile, storedAt } from './helpers/client-env.js'
import { run, start } from './helpers/client-spawn.js'

const BIN = 'dist/lib/cli/main.js'
const lastLine = (text: string): string => text.trimEnd().split('\n').pop() ?? ''

t.test('Ctrl-C stops cleanly with 130; --resume then continues where it stopped', async (t) => {
  let log!: ReturnType<typeof logRequests>
  let patches = 0
  const server = await startServer(t, {}, (app) => {
    log = logRequests(app)
    app.addHook('onRequest', async (request) => {
      if (request.method !== 'PATCH') return
      patches++
      await sleep(40)
    })
  })
  const state = tempDir(t)
  const env = { XDG_STATE_HOME: state }
  const { path, content } = sourceFile(t, 40 * 65536, 94)
  const args = [BIN, 'upload', '--resume', '--chunk-size', '64k', path, server.endpoint]
  const first = start(args, env)
  await waitFor(() => patches >= 5, 20_000, '5 PATCHes')
  first.child.kill('SIGINT')
  const stopped = await first.exited
  t.equal(stopped.code, 130, 'exit 130')
  t.match(stopped.stderr, /fastify-tus: upload interrupted; run the same command again to continue/)
  const saved = JSON.parse(readFileSync(join(state, 'fastify-tus', 'uploads.json'), 'utf8')) as { uploads: Record<string, Array<{ uploadUrl: string }>> }
  const url = Object.values(saved.uploads)[0]![0]!.uploadUrl
  await sleep(100) // the cut PATCH, if any, is finished by the server
  const offset = Number((await head(url)).headers['upload-offset'])
  t.ok(offset > 0 && offset < content.length, `stopped part-way (${offset} bytes)`)

  const posts = log.count('POST')
  log.patchBytes = 0
  const second = await run(args, { env, timeout: 60_000 })
  t.equal(second.code, 0, second.stderr)
  t.equal(lastLine(second.stdout), url, 'the same upload')
  t.equal(log.count('POST'), posts, 'no new upload')
  t.equal(log.patchBytes, content.length - offset, 'only the remainder was sent')
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored bytes equal the file')
  const after = JSON.parse(readFileSync(join(state, 'fastify-tus', 'uploads.json'), 'utf8')) as { uploads: object }
  t.same(after.uploads, {}, 'the state entry is removed on success')
})
