import { useState } from 'react'
import type { ActionResult } from '../data/api'
import { formatMs, formatPercent, statusLabel } from '../format'
import type { Service } from '../types'
import { ConfirmDialog, Empty, InlineError, Section, Switch, useAction } from './ui'

export function ServiceCard({
  service,
  operator,
  onSetHealing,
}: {
  service: Service
  operator: boolean
  onSetHealing: (service: Service, enabled: boolean) => Promise<ActionResult>
}) {
  const { icon, word } = statusLabel(service.status)
  const { run, pending, error } = useAction()
  const [confirming, setConfirming] = useState(false)
  const change = (enabled: boolean) => {
    if (!enabled) setConfirming(true)
    else void run(() => onSetHealing(service, true))
  }
  return (
    <li>
      <article className={`service status-${service.status}`} aria-labelledby={`svc-${service.id}`}>
        <h3 id={`svc-${service.id}`}>{service.name}</h3>
        <p className="service-status">
          <span aria-hidden="true">{icon}</span> {word}
          {!service.enabled && <span className="muted"> (not watched)</span>}
        </p>
        <p className="muted small">
          {service.kind} · {service.environment}
        </p>
        {service.folded_under && <p className="folded">Folded under {service.folded_under}</p>}
        <dl className="facts">
          <div className="fact-wide">
            <dt>Latency</dt>
            <dd>{formatMs(service.latency_ms)}</dd>
          </div>
          <div>
            <dt>Uptime 24 h</dt>
            <dd>{formatPercent(service.uptime_24h)}</dd>
          </div>
          <div>
            <dt>Uptime 7 d</dt>
            <dd>{formatPercent(service.uptime_7d)}</dd>
          </div>
          <div>
            <dt>Uptime 30 d</dt>
            <dd>{formatPercent(service.uptime_30d)}</dd>
          </div>
        </dl>
        <div className="service-heal">
          <span id={`heal-${service.id}`}>Auto-heal</span>
          <Switch
            checked={service.heal_enabled}
            label={`Auto-heal for ${service.name}`}
            onText="On"
            offText="Off (kill switch)"
            disabled={!operator || pending}
            onChange={change}
          />
        </div>
        <InlineError message={error} />
        {confirming && (
          <ConfirmDialog
            title={`Stop auto-heal for ${service.name}?`}
            message={<p>Vigil will keep watching and alerting, but will not act on {service.name} until healing is switched back on.</p>}
            confirmLabel="Stop auto-heal"
            onCancel={() => setConfirming(false)}
            onConfirm={() => {
              setConfirming(false)
              void run(() => onSetHealing(service, false))
            }}
          />
        )}
      </article>
    </li>
  )
}

export function ServiceGrid({
  services,
  operator,
  onSetHealing,
}: {
  services: Service[]
  operator: boolean
  onSetHealing: (service: Service, enabled: boolean) => Promise<ActionResult>
}) {
  return (
    <Section id="services" title="Services">
      {services.length === 0 ? (
        <Empty>No services are registered yet.</Empty>
      ) : (
        <ul className="grid" aria-label="Service status">
          {services.map((s) => (
            <ServiceCard key={s.id} service={s} operator={operator} onSetHealing={onSetHealing} />
          ))}
        </ul>
      )}
    </Section>
  )
}
