import assert from 'node:assert/strict'
import { scrubQuery } from '../../supabase/functions/_shared/probes/sql-text.ts'

Deno.test('literals become $n and comments go; identifiers, parameters and shape stay', () => {
  const cases: [string, string][] = [
    [
      "select * from users where email = 'ana@example.org' and age > 42",
      'select * from users where email = $1 and age > $2',
    ],
    ["update t set note = 'it''s mine' where id = 7", 'update t set note = $1 where id = $2'],
    ["select E'line\\'s end', B'1010', X'ff', U&'d\\0061t'", 'select $1, $2, $3, $4'],
    ['select $body$ secret text $body$, $$ more $$', 'select $1, $2'],
    [
      'select * from t1 where c2 = $1 and x = 3.5e10 and y = .5',
      'select * from t1 where c2 = $1 and x = $2 and y = $3',
    ],
    ['select 1 -- password=hunter2\nfrom t', 'select $1\nfrom t'],
    ['select /* token: abc /* nested */ still */ 2', 'select   $1'],
    [
      'select "weird ""col""" from "Tab 1" where "x" = \'y\'',
      'select "weird ""col""" from "Tab 1" where "x" = $1',
    ],
    ['insert into t values (0x1F, 1_000)', 'insert into t values ($1, $2)'],
    ["select'secret'", 'select$1'],
    ["select case when a then'yes'else'no'end", 'select case when a then$1else$2end'],
    ["select * from u where email like'%bob@x.com%'", 'select * from u where email like$1'],
    ["select date'2024-01-01', interval'30 days'", 'select date$1, interval$2'],
    ['select $é$ my password is hunter2 $é$', 'select $1'],
  ]
  for (const [input, want] of cases) assert.equal(scrubQuery(input), want, input)
})

Deno.test('what a probe or heal keeps of a session shows no literal: the secret is gone', () => {
  const q = "select set_config('app.api_key', 'sk_live_0123456789abcdef', false); -- rotate later"
  const s = scrubQuery(q)
  assert.ok(!s.includes('sk_live'), s)
  assert.ok(!s.includes('rotate'), s)
  assert.equal(s, 'select set_config($1, $2, false);')
})
