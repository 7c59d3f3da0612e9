import { useState } from 'react'
import type { ActionResult } from '../data/api'
import { formatControlValue, formatDateTime, humanize } from '../format'
import { ENVIRONMENT_ORDER, type ControlChange, type Environment, type Settings } from '../types'
import { ConfirmDialog, Empty, InlineError, Section, Switch, useAction } from './ui'

export interface ControlActions {
  setKillSwitch: (environment: Environment, on: boolean) => Promise<ActionResult>
  setDryRun: (environment: Environment, on: boolean) => Promise<ActionResult>
}

function EnvironmentRow({ settings, operator, actions }: { settings: Settings; operator: boolean; actions: ControlActions }) {
  const { run, pending, error } = useAction()
  const [confirming, setConfirming] = useState(false)
  const env = settings.environment
  return (
    <tr>
      <th scope="row">
        {env}
        <InlineError message={error} />
      </th>
      <td>
        <Switch
          checked={settings.kill_switch}
          label={`Kill switch for ${env}`}
          onText="On — healing stopped"
          offText="Off"
          disabled={!operator || pending}
          onChange={(next) => (next ? setConfirming(true) : void run(() => actions.setKillSwitch(env, false)))}
        />
        {confirming && (
          <ConfirmDialog
            title={`Turn on the kill switch for ${env}?`}
            message={<p>Every automatic heal in {env} stops until the kill switch is turned off. Checks and alerts go on.</p>}
            confirmLabel="Turn on kill switch"
            onCancel={() => setConfirming(false)}
            onConfirm={() => {
              setConfirming(false)
              void run(() => actions.setKillSwitch(env, true))
            }}
          />
        )}
      </td>
      <td>
        <Switch
          checked={settings.dry_run}
          label={`Dry run for ${env}`}
          onText="On — plan only"
          offText="Off"
          disabled={!operator || pending}
          onChange={(next) => void run(() => actions.setDryRun(env, next))}
        />
      </td>
    </tr>
  )
}

export function Controls({
  settings,
  changes,
  operator,
  actions,
}: {
  settings: Settings[]
  changes: ControlChange[]
  operator: boolean
  actions: ControlActions
}) {
  const rows = [...settings].sort(
    (a, b) => ENVIRONMENT_ORDER.indexOf(a.environment) - ENVIRONMENT_ORDER.indexOf(b.environment),
  )
  return (
    <Section id="controls" title="Operator controls">
      {rows.length === 0 ? (
        <Empty>No environment settings found.</Empty>
      ) : (
        <table className="controls">
          <caption className="visually-hidden">Kill switch and dry run per environment</caption>
          <thead>
            <tr>
              <th scope="col">Environment</th>
              <th scope="col">Kill switch</th>
              <th scope="col">Dry run</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((s) => (
              <EnvironmentRow key={s.environment} settings={s} operator={operator} actions={actions} />
            ))}
          </tbody>
        </table>
      )}
      <h3>Recent changes</h3>
      {changes.length === 0 ? (
        <Empty>No control changes yet.</Empty>
      ) : (
        <ol className="audit">
          {changes.map((c) => (
            <li key={c.id}>
              <time dateTime={c.changed_at}>{formatDateTime(c.changed_at)}</time>{' '}
              <strong>{c.actor_name ?? 'system'}</strong> set {humanize(c.field).toLowerCase()} on <code>{c.target}</code> from{' '}
              {formatControlValue(c.old_value)} to {formatControlValue(c.new_value)}
            </li>
          ))}
        </ol>
      )}
    </Section>
  )
}
