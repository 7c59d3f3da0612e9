-- What the public status page may show of open incidents: the service, a public title chosen by
-- severity ("Outage" / "Degraded performance"), and when it began. Never the internal title, which
-- quotes errors, hosts and statements. A view owned by vigil_owner: anon reads it without reading
-- the incidents beneath.
create view vigil.public_incidents as
select s.name as service,
       case i.severity when 'critical' then 'Outage' else 'Degraded performance' end as title,
       i.opened_at
  from vigil.incidents i
  join vigil.services s on s.id = i.service_id
 where i.status = 'open' and s.enabled
   and i.kind in ('service_unhealthy')
 order by i.opened_at desc;
comment on view vigil.public_incidents is
  'Open incidents for the public status page: service, public title by severity, since when. Nothing internal.';
grant select on vigil.public_incidents to anon, authenticated, service_role;
select vigil.settle_privileges();
