import { describe, expect, it } from 'vitest'
import { connectionBudget, parseOpenFileLimit } from './fd-budget.js'

describe('connectionBudget', () => {
  it.each([
    [20_000, 7, 8192, 2784],
    [1_048_576, 7, 8192, 8192],
    [20_000, 2, 8192, 8192],
    [600, 7, 8192, 16],
  ])('limit %i, %i fds each, ceiling %i → %i', (limit, fds, ceiling, expected) => {
    expect(connectionBudget(fds, ceiling, limit)).toBe(expected)
  })

  it('keeps the ceiling when the limit is unknown', () => {
    expect(connectionBudget(7, 8192, undefined)).toBe(8192)
  })
})

describe('parseOpenFileLimit', () => {
  it.each([
    ['Max open files            20000                40000                files\n', 20_000],
    ['Max open files            unlimited            unlimited            files\n', undefined],
    ['Max processes             1000                 1000                 processes\n', undefined],
  ])('%j → %s', (text, expected) => {
    expect(parseOpenFileLimit(text)).toBe(expected)
  })
})
