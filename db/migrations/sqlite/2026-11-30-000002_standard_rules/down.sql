DROP TRIGGER purchases_kept;
DROP TRIGGER purchases_immutable;
DROP TRIGGER requirements_frozen_delete;
DROP TRIGGER requirements_frozen_update;
DROP TRIGGER requirements_frozen_insert;
DROP INDEX standard_versions_one_draft;
