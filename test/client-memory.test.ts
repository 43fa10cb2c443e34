// Bounded memory: the client reads a file one chunk at a time into one buffer,
// and buffers at most a chunk of a stream. The CLI runs in its own process so
// its RSS can be read from /proc while it uploads 256 MiB (CLIENT_MEM_TEST_MIB to change).
import t from 'tap'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, openSync, closeSync, ftruncateSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startServer, tempDir } from './helpers/server.js'
import { idOf } from './helpers/tus.js'

const BIN = 'dist/lib/cli/main.js'
const MiB = 1024 * 1024
const rss = (pid: number): number => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024
  } catch {
    return 0 // the process has just exited
  }
}

/** A file of `size` zero bytes, made sparse so it costs nothing to create. */
function zeros (dir: string, name: string, size: number): string {
  const path = join(dir, name)
  const fd = openSync(path, 'w')
  ftruncateSync(fd, size)
  closeSync(fd)
  return path
}

async function sha256File (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Runs the CLI, sampling its RSS every 20 ms; answers the peak and the upload URL. */
function uploadMeasured (args: string[], stdinPath?: string): Promise<{ peak: number; url: string; code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const stdin = stdinPath === undefined ? 'ignore' : openSync(stdinPath, 'r')
    const child = spawn(process.execPath, [BIN, 'upload', ...args], { stdio: [stdin, 'pipe', 'pipe'] })
    if (typeof stdin === 'number') closeSync(stdin)
    let peak = 0
    let stdout = ''
    let stderr = ''
    const sampler = setInterval(() => { peak = Math.max(peak, rss(child.pid!)) }, 20)
    const timer = setTimeout(() => child.kill('SIGKILL'), 110_000)
    child.stdout!.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
    child.on('error', reject)
    child.on('close', (code) => {
      clearInterval(sampler)
      clearTimeout(timer)
      resolve({ peak, url: stdout.trimEnd().split('\n').pop() ?? '', code, stderr })
    })
  })
}

t.test('peak RSS of a 256 MiB upload stays near that of a 1 MiB one', { skip: process.platform !== 'linux' && 'needs /proc', timeout: 240_000 }, async (t) => {
  const server = await startServer(t, { fsync: false })
  const dir = tempDir(t)
  const total = Number(process.env.CLIENT_MEM_TEST_MIB ?? 256)
  const small = zeros(dir, 'small.bin', MiB)
  const large = zeros(dir, 'large.bin', total * MiB)
  const expected = await sha256File(large)

  const cases: Array<[string, string[], string | undefined]> = [
    ['file path', [large, server.endpoint], undefined],
    ['stream (standard input)', ['-', server.endpoint], large],
    ['4 parallel parts', ['--parallel', '4', large, server.endpoint], undefined]
  ]
  const baseline = await uploadMeasured([small, server.endpoint])
  t.equal(baseline.code, 0, baseline.stderr)
  for (const [label, args, stdin] of cases) {
    const run = await uploadMeasured(['--chunk-size', '1m', ...args], stdin)
    t.equal(run.code, 0, `${label}: exit 0 ${run.stderr.slice(-300)}`)
    t.equal(await sha256File(join(server.uploadDir, idOf(run.url))), expected, `${label}: stored bytes equal the source`)
    const growth = run.peak - baseline.peak
    t.comment(`${label}: peak RSS ${(baseline.peak / MiB).toFixed(1)} MiB for 1 MiB, ${(run.peak / MiB).toFixed(1)} MiB for ${total} MiB`)
    // Bounded, not zero: the bytes read from the file or pipe are garbage once sent, and V8
    // collects such off-heap buffers only after some 64 MiB of them have piled up (seen: 15-41 MiB
    // of growth). An upload held whole would add its full size (256 MiB by default).
    t.ok(growth < 64 * MiB, `${label}: RSS grew by ${(growth / MiB).toFixed(1)} MiB for a ${total}x larger upload`)
  }
})
