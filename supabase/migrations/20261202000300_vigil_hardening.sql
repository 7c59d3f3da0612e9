-- Security hardening, first part: the schema-validation helper is the service role's and the
-- owner's alone. An operator reads tables through RLS; running Vigil's machinery is not theirs.
revoke execute on function vigil.json_schema_errors(jsonb, jsonb, text) from authenticated;
