// Every fault, once, in the order `chaos list` shows them and the suite runs them.
import { APP_FAULTS } from './app-faults.ts'
import { DB_FAULTS } from './db-faults.ts'
import { databaseDown } from './database-down.ts'
import { EDGE_FAULTS } from './edge-faults.ts'
import type { Fault } from './types.ts'

export const FAULTS: readonly Fault[] = [...DB_FAULTS, ...APP_FAULTS, databaseDown, ...EDGE_FAULTS]

export function faultNamed(name: string): Fault | undefined {
  return FAULTS.find((f) => f.name === name)
}
