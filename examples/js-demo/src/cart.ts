export interface Line {
  sku: string
  cents: number
  quantity: number
}

export function subtotal(lines: Line[]): number {
  return lines.reduce((sum, line) => sum + line.cents * line.quantity, 0)
}

/** A percentage discount, rounded down to the cent (the shop's rule). */
export function discounted(cents: number, percent: number): number {
  if (percent < 0 || percent > 100) throw new RangeError(`bad discount ${percent}%`)
  return Math.round((cents * (100 - percent)) / 100)
}

export function formatCents(cents: number): string {
  return `$${(cents / 100).toFixed(2)}`
}
