// `fastify-tus upload` over https with a client certificate: --ca, --cert, --key
// and --insecure, against the plugin requiring client certificates from a test CA.
import t from 'tap'
import { join } from 'node:path'
import Fastify from 'fastify'
import tus from '../lib/index.js'
import { tempDir } from './helpers/server.js'
import { sourceFile, storedAt } from './helpers/client-env.js'
import { run } from './helpers/client-spawn.js'
import { makePki } from './helpers/client-tls.js'

const BIN = 'dist/lib/cli/main.js'
const lastLine = (text: string): string => text.trimEnd().split('\n').pop() ?? ''

t.test('TLS flags: --ca, --cert, --key and --insecure', async (t) => {
  const pki = makePki(tempDir(t, 'fastify-tus-pki-'))
  const dir = tempDir(t)
  const app = Fastify({ https: { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true, rejectUnauthorized: true } })
  await app.register(tus, { uploadDir: join(dir, 'uploads'), db: join(dir, 'db.sqlite') })
  const endpoint = `${await app.listen({ host: '127.0.0.1', port: 0 })}/files`
  t.teardown(() => app.close())
  const { path, content } = sourceFile(t, 100_000, 95)

  const ok = await run([BIN, 'upload', '--ca', pki.paths.caCert, '--cert', pki.paths.clientCert, '--key', pki.paths.clientKey, path, endpoint])
  t.equal(ok.code, 0, ok.stderr)
  t.ok(storedAt(join(dir, 'uploads'), lastLine(ok.stdout))?.equals(content), 'mTLS upload is byte-exact')

  const insecure = await run([BIN, 'upload', '--insecure', '--cert', pki.paths.clientCert, '--key', pki.paths.clientKey, path, endpoint])
  t.equal(insecure.code, 0, `--insecure skips verification ${insecure.stderr}`)

  const untrusted = await run([BIN, 'upload', '--cert', pki.paths.clientCert, '--key', pki.paths.clientKey, path, endpoint])
  t.equal(untrusted.code, 1, 'without --ca: refused')
  t.match(untrusted.stderr, /^fastify-tus: .*(certificate|SELF_SIGNED)/i)

  const noCert = await run([BIN, 'upload', '--ca', pki.paths.caCert, path, endpoint])
  t.equal(noCert.code, 1, 'without a client certificate: refused')
  const half = await run([BIN, 'upload', '--cert', pki.paths.clientCert, path, endpoint])
  t.equal(half.code, 2, '--cert without --key is a usage error')
})
