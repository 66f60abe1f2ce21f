-- At most one draft per standard: a new draft starts from the latest version.
CREATE UNIQUE INDEX standard_versions_one_draft ON standard_versions (standard_id) WHERE status = 'draft';

-- The requirements of a version that is no longer a draft never change.
CREATE FUNCTION requirements_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    version_status TEXT;
BEGIN
    SELECT status INTO version_status FROM standard_versions
    WHERE id = CASE WHEN TG_OP = 'INSERT' THEN NEW.version_id ELSE OLD.version_id END;
    IF version_status <> 'draft' THEN
        RAISE EXCEPTION 'the requirements of a published version never change';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER requirements_frozen BEFORE INSERT OR UPDATE OR DELETE ON requirements
FOR EACH ROW EXECUTE FUNCTION requirements_frozen();

-- Purchases are immutable: a correction is a new purchase that supersedes one.
CREATE FUNCTION purchases_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'purchases are immutable';
END
$$;
CREATE TRIGGER purchases_immutable BEFORE UPDATE OR DELETE ON purchases
FOR EACH ROW EXECUTE FUNCTION purchases_immutable();
