import type { Struct } from '../../lib/gen/google/protobuf/Struct.js'
import type { Value } from '../../lib/gen/google/protobuf/Value.js'

/**
 * Converts JSON claims to a `google.protobuf.Struct` as proto-loader expects it (google.protobuf types keep protobufjs's camelCase names).
 * Numbers become doubles, as SPIRE's do.
 */
export function toStruct(object: Readonly<Record<string, unknown>>): Struct {
  const fields: Record<string, Value> = {}
  for (const [key, value] of Object.entries(object)) fields[key] = toValue(value)
  return { fields }
}

function toValue(value: unknown): Value {
  if (value === null || value === undefined) return { nullValue: 'NULL_VALUE' }
  if (typeof value === 'number') return { numberValue: value }
  if (typeof value === 'string') return { stringValue: value }
  if (typeof value === 'boolean') return { boolValue: value }
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } }
  if (typeof value === 'object') return { structValue: toStruct(value as Record<string, unknown>) }
  return { stringValue: String(value) }
}
