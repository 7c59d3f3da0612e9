-- Log patterns: the spec's critical ones are built in; a pattern that is not a valid regular
-- expression is refused at insert naming it; matching is case-insensitive, per log, at least
-- min_count lines, most severe and most specific first; operators read them, nobody else.
begin;
set search_path = extensions, public;
select plan(12);

select set_eq(
  $$select name from vigil.log_patterns where builtin$$,
  array['suspected_corruption', 'server_panic', 'out_of_memory', 'database_fatal',
        'authentication_failures', 'function_resource_limit'],
  'the spec''s critical patterns are built in'
);
select is((select action from vigil.log_patterns where name = 'suspected_corruption'), 'page',
          'suspected corruption pages people');

select throws_ok(
  $$insert into vigil.log_patterns (name, pattern, severity) values ('broken_one', 'FATAL: (unclosed', 'warning')$$,
  '2201B', null, 'a pattern that does not compile is refused'
);
select throws_like(
  $$insert into vigil.log_patterns (name, pattern, severity) values ('broken_one', 'a[b', 'warning')$$,
  'log pattern broken_one: ''a[b'' is not a valid regular expression: %',
  'and the refusal names the pattern and what is wrong with it'
);
select throws_ok(
  $$update vigil.log_patterns set pattern = '(' where name = 'database_fatal'$$,
  '2201B', null, 'an update is checked too'
);
select throws_ok(
  $$insert into vigil.log_patterns (name, pattern, severity, action) values ('x', 'y', 'warning', 'restart')$$,
  '23514', null, 'an action is page, alert or record'
);

insert into vigil.log_patterns (name, pattern, severity, action, sources, min_count)
values ('t101_checkout', 'checkout failed', 'warning', 'alert', array['functions'], 2);

create function pg_temp.matched(p_log text, p_lines text[]) returns text[] language sql as $$
  select coalesce(array_agg(m ->> 'pattern' order by o), '{}')
    from jsonb_array_elements(vigil.match_log_lines(p_log,
           (select jsonb_agg(jsonb_build_object('at', 'now', 'line', l)) from unnest(p_lines) l)))
         with ordinality as t(m, o)
$$;

select is(
  pg_temp.matched('postgres', array['2026-12-03 UTC [9] PANIC:  could not read block 7 in file "base/5/1"']),
  array['suspected_corruption', 'server_panic'],
  'a PANIC about an unreadable block is suspected corruption first, then a panic'
);
select is(pg_temp.matched('postgres', array['fatal:  the DATABASE system is starting up']),
          array['database_fatal'], 'matching ignores case');
select is(pg_temp.matched('postgres', array['LOG:  checkpoint complete']), '{}'::text[],
          'an ordinary line matches nothing');
select is(pg_temp.matched('functions', array['Checkout failed: card declined']), '{}'::text[],
          'one line is below min_count 2');
select is(pg_temp.matched('functions', array['Checkout failed: a', 'Checkout failed: b']),
          array['t101_checkout'], 'two are not; and a functions pattern is not a postgres one');

set local role authenticated;
select is((select count(*) from vigil.log_patterns), 0::bigint, 'a user who is not an operator sees no patterns');
reset role;

select * from finish();
rollback;
