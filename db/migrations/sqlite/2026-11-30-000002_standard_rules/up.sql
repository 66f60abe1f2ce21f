-- At most one draft per standard: a new draft starts from the latest version.
CREATE UNIQUE INDEX standard_versions_one_draft ON standard_versions (standard_id) WHERE status = 'draft';

-- The requirements of a version that is no longer a draft never change.
CREATE TRIGGER requirements_frozen_insert BEFORE INSERT ON requirements
WHEN (SELECT status FROM standard_versions WHERE id = NEW.version_id) <> 'draft'
BEGIN SELECT RAISE(ABORT, 'the requirements of a published version never change'); END;
CREATE TRIGGER requirements_frozen_update BEFORE UPDATE ON requirements
WHEN (SELECT status FROM standard_versions WHERE id = OLD.version_id) <> 'draft'
BEGIN SELECT RAISE(ABORT, 'the requirements of a published version never change'); END;
CREATE TRIGGER requirements_frozen_delete BEFORE DELETE ON requirements
WHEN (SELECT status FROM standard_versions WHERE id = OLD.version_id) <> 'draft'
BEGIN SELECT RAISE(ABORT, 'the requirements of a published version never change'); END;

-- Purchases are immutable: a correction is a new purchase that supersedes one.
CREATE TRIGGER purchases_immutable BEFORE UPDATE ON purchases
BEGIN SELECT RAISE(ABORT, 'purchases are immutable'); END;
CREATE TRIGGER purchases_kept BEFORE DELETE ON purchases
BEGIN SELECT RAISE(ABORT, 'purchases are immutable'); END;
