// Prints the top functions by self time of a V8 .cpuprofile (node --cpu-prof).
//   node bench/profile-summary.js file.cpuprofile [count=25]
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'

const [file, countArg] = process.argv.slice(2)
if (!file) {
  console.error('usage: node bench/profile-summary.js <file.cpuprofile> [count]')
  process.exit(2)
}
const count = Number(countArg ?? 25)
const profile = JSON.parse(readFileSync(file, 'utf8'))
const nodes = new Map(profile.nodes.map((n) => [n.id, n]))

// Self time of a node = the time deltas of the samples taken in it.
const self = new Map()
const { samples, timeDeltas } = profile
for (let i = 0; i < samples.length; i++) self.set(samples[i], (self.get(samples[i]) ?? 0) + (timeDeltas[i] ?? 0))
let total = 0
for (const t of self.values()) total += t

const where = (url) => {
  if (!url) return ''
  let u = url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url
  if (u.startsWith('/')) u = relative(process.cwd(), u)
  return u
}

// One row per function (name + url + line), summed over every place it was called from.
const rows = new Map()
const byGroup = new Map()
for (const [id, time] of self) {
  const { functionName, url, lineNumber } = nodes.get(id).callFrame
  const name = functionName || '(anonymous)'
  const loc = url ? `${where(url)}:${lineNumber + 1}` : ''
  const key = `${name}\u0000${loc}`
  rows.set(key, { name, loc, time: (rows.get(key)?.time ?? 0) + time })
  const group = !url ? name.startsWith('(') ? name : '(native)'
    : url.includes('/node_modules/') ? url.replace(/.*\/node_modules\/((@[^/]+\/)?[^/]+).*/, 'pkg:$1')
      : url.startsWith('node:') ? 'node:internal'
        : url.includes('/dist/lib/') ? 'fastify-tus (dist/lib)' : where(url)
  byGroup.set(group, (byGroup.get(group) ?? 0) + time)
}

const ms = (us) => (us / 1000).toFixed(1).padStart(9)
const pct = (us) => `${(100 * us / total).toFixed(1)}%`.padStart(7)
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled, ${samples.length} samples`)
console.log(`${'self ms'.padStart(9)} ${'self'.padStart(7)}  function  (url:line)`)
for (const r of [...rows.values()].sort((a, b) => b.time - a.time).slice(0, count)) {
  console.log(`${ms(r.time)} ${pct(r.time)}  ${r.name}${r.loc ? `  ${r.loc}` : ''}`)
}
console.log('\nself time by origin:')
for (const [g, t] of [...byGroup].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`${ms(t)} ${pct(t)}  ${g}`)
