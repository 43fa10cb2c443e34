/**
 * URLs Fastify's router refuses before the plugin runs (an id over
 * maxParamLength, broken percent-encoding): with `frameworkErrors:
 * tusFrameworkErrors`, as the command line's server has, they are answered like
 * every other refusal, in plain text with a one-line reason and Tus-Resumable.
 */
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { tusFrameworkErrors } from '../lib/index.js'
import { startServer, tempDir } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { OCTET, TUS, create, send } from './helpers/http.js'
import { assertError, head } from './helpers/tus.js'

const LONG_ID = 'a'.repeat(150)

async function assertRouterRefusals (t: Test, endpoint: string): Promise<void> {
  const long = await head(`${endpoint}/${LONG_ID}`)
  t.equal(long.status, 414, 'an id longer than the router allows: 414')
  t.equal(long.headers['tus-resumable'], '1.0.0', '414 carries Tus-Resumable')
  const longPatch = await send('PATCH', `${endpoint}/${LONG_ID}`, { headers: { ...TUS, ...OCTET, 'Upload-Offset': '0' }, body: Buffer.alloc(10) })
  assertError(t, longPatch, 414, 'PATCH with a long id')
  assertError(t, await send('GET', `${endpoint}/%E0%A4%A`, { headers: TUS }), 400, 'broken percent-encoding')
  // The server goes on as before.
  const url = await create(endpoint, { 'Upload-Length': '0' })
  t.equal((await head(url)).status, 200, 'a normal upload still works')
}

t.test('a Fastify app with frameworkErrors: tusFrameworkErrors', async (t) => {
  const { endpoint } = await startServer(t, {}, undefined, { frameworkErrors: tusFrameworkErrors })
  await assertRouterRefusals(t, endpoint)
})

t.test('the command line\'s server', async (t) => {
  const dir = tempDir(t)
  const { origin } = await spawnServer(t, ['dist/lib/cli/main.js', 'serve', '--port', '0', '--upload-dir', join(dir, 'uploads'), '--db-path', join(dir, 'uploads.db')])
  await assertRouterRefusals(t, `${origin}/files`)
})
