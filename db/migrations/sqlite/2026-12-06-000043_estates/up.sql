-- Estates (issue 18): what an organisation runs, from its own inventory exports.
--
-- An organisation has at most one current snapshot per source (the catalogue's own CSV, a
-- Microsoft Defender for Endpoint software inventory, an Intune discovered-apps export); a new
-- import of a source replaces its snapshot whole, in one transaction. Rows are kept aggregated
-- per product, release and site (device and user counts), not per device.
CREATE TABLE estate_snapshots (
    id INTEGER PRIMARY KEY NOT NULL,
    organisation_code TEXT NOT NULL REFERENCES organisations (code),
    source TEXT NOT NULL CHECK (source IN ('catalogue', 'defender', 'intune')),
    taken_on DATE NOT NULL,
    rows_read BIGINT NOT NULL CHECK (rows_read >= 0),
    rows_matched BIGINT NOT NULL CHECK (rows_matched >= 0),
    rows_unmatched BIGINT NOT NULL CHECK (rows_unmatched >= 0),
    imported_by BIGINT REFERENCES users (id),
    imported_at TIMESTAMP NOT NULL,
    UNIQUE (organisation_code, source)
);

CREATE TABLE estate_items (
    id INTEGER PRIMARY KEY NOT NULL,
    snapshot_id BIGINT NOT NULL REFERENCES estate_snapshots (id) ON DELETE CASCADE,
    product_id BIGINT NOT NULL REFERENCES products (id),
    release_id BIGINT REFERENCES releases (id),
    site TEXT NOT NULL DEFAULT '',
    devices BIGINT NOT NULL CHECK (devices BETWEEN 0 AND 100000000),
    users BIGINT NOT NULL CHECK (users BETWEEN 0 AND 100000000),
    -- When a snapshot of this organisation and source first showed the product: kept across
    -- later imports, so that an advisory's deadline runs from when the organisation became
    -- exposed, and re-importing cannot move it.
    first_seen_at TIMESTAMP NOT NULL
);
CREATE INDEX estate_items_snapshot ON estate_items (snapshot_id);
CREATE INDEX estate_items_product ON estate_items (product_id);

-- Names in a snapshot that matched no product, aggregated per name and version; they wait in
-- the national team's queue until a mapping names their product.
CREATE TABLE estate_unmatched (
    id INTEGER PRIMARY KEY NOT NULL,
    snapshot_id BIGINT NOT NULL REFERENCES estate_snapshots (id) ON DELETE CASCADE,
    name_key TEXT NOT NULL,
    vendor TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    site TEXT NOT NULL DEFAULT '',
    devices BIGINT NOT NULL CHECK (devices BETWEEN 0 AND 100000000),
    users BIGINT NOT NULL CHECK (users BETWEEN 0 AND 100000000)
);
CREATE INDEX estate_unmatched_snapshot ON estate_unmatched (snapshot_id);
CREATE INDEX estate_unmatched_key ON estate_unmatched (name_key);

-- A name (vendor and name, normalised) that the national team has mapped to a product, once,
-- for every later import of any organisation.
CREATE TABLE software_name_mappings (
    id INTEGER PRIMARY KEY NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    product_id BIGINT NOT NULL REFERENCES products (id),
    mapped_by BIGINT REFERENCES users (id),
    mapped_at TIMESTAMP NOT NULL
);
