import { describe, expect, it } from 'vitest'
import { discounted, formatCents, subtotal } from '../src/cart'

describe('subtotal', () => {
  it('is zero for an empty cart', () => {
    expect(subtotal([])).toBe(0)
  })

  it('multiplies by quantity', () => {
    expect(subtotal([{ sku: 'tea', cents: 450, quantity: 3 }])).toBe(1350)
  })
})

describe('discounted', () => {
  it.each([
    [1000, 10, 900],
    [998, 50, 499],
    [1000, 0, 1000],
  ])('%i cents at %i%% off is %i', (cents, percent, expected) => {
    expect(discounted(cents, percent)).toBe(expected)
  })

  it('rejects a discount over 100%', () => {
    expect(() => discounted(100, 120)).toThrow(RangeError)
  })

  // Fails on purpose: the shop rounds down, the code rounds half up.
  it('deliberately failing: rounds 1 cent at 50% off down to 0', () => {
    expect(discounted(1, 50)).toBe(0)
  })
})

describe('formatCents', () => {
  it('shows dollars and cents', () => {
    expect(formatCents(1350)).toBe('$13.50')
  })
})
