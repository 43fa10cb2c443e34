// The protocol tests of the server, run a second time on PostgreSQL
// (`npm test` runs this after the main tap run): the same files, with
// TUS_TEST_BACKEND=postgres, so startServer() gives every server its own
// schema on the database at TUS_TEST_POSTGRES_URL. Without that variable the
// pass is skipped, with one line saying so.
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const PROTOCOL_TESTS = [
  'core', 'tus-resumable', 'patch', 'creation', 'creation-with-upload', 'creation-aborted', 'defer-length',
  'termination', 'expiration', 'checksum', 'concatenation', 'method-override', 'download', 'cors', 'limits',
  'location', 'locking', 'lock-takeover', 'concurrent-patch', 'races', 'hooks', 'complete-hook-delivery',
  'decorator', 'tus-js-client', 'fuzz'
].map((name) => `test/${name}.test.ts`)

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

// Run only as a script: test/s3-pass.mjs imports PROTOCOL_TESTS from here.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (!process.env.TUS_TEST_POSTGRES_URL) {
    process.stdout.write('# PostgreSQL pass of the protocol tests skipped: TUS_TEST_POSTGRES_URL is not set\n')
    process.exit(0)
  }
  process.stdout.write(`# PostgreSQL pass: ${PROTOCOL_TESTS.length} protocol test files on ${process.env.TUS_TEST_POSTGRES_URL}\n`)
  const result = spawnSync(join(root, 'node_modules', '.bin', 'tap'), [...PROTOCOL_TESTS, ...process.argv.slice(2)], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, TUS_TEST_BACKEND: 'postgres' }
  })
  if (result.error !== undefined) throw result.error
  process.exit(result.status ?? 1)
}
