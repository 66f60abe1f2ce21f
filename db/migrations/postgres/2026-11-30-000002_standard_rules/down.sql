DROP TRIGGER purchases_immutable ON purchases;
DROP FUNCTION purchases_immutable;
DROP TRIGGER requirements_frozen ON requirements;
DROP FUNCTION requirements_frozen;
DROP INDEX standard_versions_one_draft;
