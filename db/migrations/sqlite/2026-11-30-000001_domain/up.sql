-- The whole domain of DESIGN.md. Every table keeps its history: nothing here is deleted by the
-- application (ended agreements, closed organisations, released allocations and superseded
-- standard versions stay), and audit events cannot be changed at all.

CREATE TABLE organisations (
    code TEXT PRIMARY KEY NOT NULL CHECK (length(code) BETWEEN 3 AND 10 AND code = upper(code)),
    name TEXT NOT NULL CHECK (length(name) > 0),
    kind TEXT NOT NULL CHECK (kind IN ('trust', 'icb', 'gp_practice', 'csu', 'national_body', 'arms_length_body', 'other')),
    region TEXT,
    exemplar BOOLEAN NOT NULL DEFAULT FALSE,
    closed_on DATE,
    successor_code TEXT REFERENCES organisations (code),
    source TEXT,
    revision BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK (successor_code IS NULL OR closed_on IS NOT NULL),
    CHECK (successor_code IS NULL OR successor_code <> code)
);
CREATE INDEX organisations_kind ON organisations (kind);
CREATE INDEX organisations_region ON organisations (region);

CREATE TABLE suppliers (
    id INTEGER PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE CHECK (length(name) > 0),
    source TEXT
);

CREATE TABLE products (
    id INTEGER PRIMARY KEY NOT NULL,
    supplier_id BIGINT NOT NULL REFERENCES suppliers (id),
    name TEXT NOT NULL CHECK (length(name) > 0),
    edition TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '',
    sku TEXT,
    category TEXT NOT NULL CHECK (length(category) > 0 AND category NOT GLOB '*[^a-z0-9-]*'),
    released_on DATE,
    mainstream_support_ends_on DATE,
    extended_support_ends_on DATE,
    dtac_passed BOOLEAN NOT NULL DEFAULT FALSE,
    mds2_supplied BOOLEAN NOT NULL DEFAULT FALSE,
    source TEXT,
    revision BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (supplier_id, name, edition, version),
    CHECK (mainstream_support_ends_on IS NULL OR extended_support_ends_on IS NULL
           OR mainstream_support_ends_on <= extended_support_ends_on)
);
CREATE UNIQUE INDEX products_sku ON products (sku);
CREATE INDEX products_category ON products (category);

CREATE TABLE agreements (
    id INTEGER PRIMARY KEY NOT NULL,
    supplier_id BIGINT NOT NULL REFERENCES suppliers (id),
    reference TEXT NOT NULL UNIQUE CHECK (length(reference) > 0),
    title TEXT NOT NULL CHECK (length(title) > 0),
    framework_reference TEXT,
    starts_on DATE NOT NULL,
    ends_on DATE,
    funding_model TEXT NOT NULL CHECK (funding_model IN ('central', 'co_funded', 'local')),
    status TEXT NOT NULL CHECK (status IN ('draft', 'active', 'expired', 'terminated')),
    -- Comma-separated organisation kinds, e.g. 'trust,icb,csu'.
    eligible_kinds TEXT NOT NULL,
    source TEXT,
    revision BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK (ends_on IS NULL OR ends_on >= starts_on)
);

CREATE TABLE entitlements (
    id INTEGER PRIMARY KEY NOT NULL,
    agreement_id BIGINT NOT NULL REFERENCES agreements (id),
    product_id BIGINT NOT NULL REFERENCES products (id),
    tier TEXT NOT NULL CHECK (tier IN ('national_provision', 'top_up', 'add_on')),
    metric TEXT NOT NULL CHECK (metric IN ('per_device', 'per_user', 'per_core', 'site')),
    seat_cap BIGINT CHECK (seat_cap IS NULL OR seat_cap >= 0),
    -- The ledger's running total of live allocations, kept in the same transaction as every
    -- allocation change so that the cap check below is one atomic conditional update.
    seats_allocated BIGINT NOT NULL DEFAULT 0 CHECK (seats_allocated >= 0),
    over_allocation_policy TEXT NOT NULL DEFAULT 'block' CHECK (over_allocation_policy IN ('block', 'allow_and_flag')),
    eligible_kinds TEXT NOT NULL,
    starts_on DATE NOT NULL,
    ends_on DATE,
    how_to_claim TEXT,
    source TEXT,
    revision BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (agreement_id, product_id, tier),
    CHECK (ends_on IS NULL OR ends_on >= starts_on),
    -- The ledger invariant, held by the database itself: never more seats than the cap unless
    -- the entitlement explicitly allows over-allocation (flagged for true-up).
    CHECK (over_allocation_policy = 'allow_and_flag' OR seat_cap IS NULL OR seats_allocated <= seat_cap)
);
CREATE INDEX entitlements_product ON entitlements (product_id);

CREATE TABLE obligations (
    id INTEGER PRIMARY KEY NOT NULL,
    entitlement_id BIGINT NOT NULL REFERENCES entitlements (id),
    description TEXT NOT NULL CHECK (length(description) > 0),
    due_on DATE
);
CREATE INDEX obligations_entitlement ON obligations (entitlement_id);

CREATE TABLE users (
    id INTEGER PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%'),
    display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'exemplar', 'officer', 'auditor')),
    organisation_code TEXT REFERENCES organisations (code),
    password_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    -- Bumped whenever a token must stop working (password, role or organisation change).
    token_generation BIGINT NOT NULL DEFAULT 0,
    revision BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK (role IN ('admin', 'auditor') OR organisation_code IS NOT NULL)
);

CREATE TABLE allocations (
    id INTEGER PRIMARY KEY NOT NULL,
    entitlement_id BIGINT NOT NULL REFERENCES entitlements (id),
    organisation_code TEXT NOT NULL REFERENCES organisations (code),
    -- Seats held now; claimed_quantity is what the claim first took.
    quantity BIGINT NOT NULL CHECK (quantity >= 0),
    claimed_quantity BIGINT NOT NULL CHECK (claimed_quantity > 0),
    status TEXT NOT NULL CHECK (status IN ('live', 'released', 'transferred')),
    reference TEXT,
    transferred_to_id BIGINT REFERENCES allocations (id),
    created_by BIGINT REFERENCES users (id),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK (status <> 'live' OR quantity > 0)
);
CREATE INDEX allocations_entitlement ON allocations (entitlement_id, status);
CREATE INDEX allocations_organisation ON allocations (organisation_code, status);

CREATE TABLE obligation_acceptances (
    id INTEGER PRIMARY KEY NOT NULL,
    obligation_id BIGINT NOT NULL REFERENCES obligations (id),
    organisation_code TEXT NOT NULL REFERENCES organisations (code),
    accepted_at TIMESTAMP NOT NULL,
    due_on DATE,
    status TEXT NOT NULL CHECK (status IN ('open', 'met', 'transferred')),
    UNIQUE (obligation_id, organisation_code)
);

CREATE TABLE idempotency_keys (
    user_id BIGINT NOT NULL REFERENCES users (id),
    idempotency_key TEXT NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_fingerprint TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (user_id, idempotency_key)
);

CREATE TABLE standards (
    id INTEGER PRIMARY KEY NOT NULL,
    publisher_code TEXT NOT NULL REFERENCES organisations (code),
    category TEXT NOT NULL CHECK (length(category) > 0 AND category NOT GLOB '*[^a-z0-9-]*'),
    title TEXT NOT NULL CHECK (length(title) > 0),
    source TEXT,
    revision BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (publisher_code, title)
);
CREATE INDEX standards_category ON standards (category);

CREATE TABLE standard_versions (
    id INTEGER PRIMARY KEY NOT NULL,
    standard_id BIGINT NOT NULL REFERENCES standards (id),
    number INTEGER NOT NULL CHECK (number > 0),
    status TEXT NOT NULL CHECK (status IN ('draft', 'published', 'superseded', 'withdrawn')),
    summary TEXT,
    published_at TIMESTAMP,
    superseded_at TIMESTAMP,
    withdrawn_at TIMESTAMP,
    revision BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (standard_id, number),
    CHECK (status = 'draft' OR status = 'withdrawn' OR published_at IS NOT NULL)
);
-- At most one published version of a standard, held by the database under any concurrency.
CREATE UNIQUE INDEX standard_versions_one_published ON standard_versions (standard_id) WHERE status = 'published';

CREATE TABLE requirements (
    id INTEGER PRIMARY KEY NOT NULL,
    version_id BIGINT NOT NULL REFERENCES standard_versions (id),
    code TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 32),
    text TEXT NOT NULL CHECK (length(text) > 0),
    level TEXT NOT NULL CHECK (level IN ('MUST', 'SHOULD', 'MAY')),
    -- Optional machine-checkable criterion as JSON, evaluated by the service against the product.
    criterion TEXT,
    position INTEGER NOT NULL DEFAULT 0,
    UNIQUE (version_id, code)
);

CREATE TABLE assessments (
    id INTEGER PRIMARY KEY NOT NULL,
    version_id BIGINT NOT NULL REFERENCES standard_versions (id),
    product_id BIGINT NOT NULL REFERENCES products (id),
    conforms BOOLEAN NOT NULL,
    -- JSON: outcome per requirement code, and evidence links.
    outcomes TEXT NOT NULL,
    evidence TEXT NOT NULL,
    assessed_by BIGINT REFERENCES users (id),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (version_id, product_id)
);

CREATE TABLE purchases (
    id INTEGER PRIMARY KEY NOT NULL,
    organisation_code TEXT NOT NULL REFERENCES organisations (code),
    product_id BIGINT REFERENCES products (id),
    description TEXT,
    category TEXT NOT NULL CHECK (length(category) > 0 AND category NOT GLOB '*[^a-z0-9-]*'),
    version_id BIGINT NOT NULL REFERENCES standard_versions (id),
    purchased_on DATE NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    unit_cost_pence BIGINT NOT NULL CHECK (unit_cost_pence >= 0),
    order_reference TEXT NOT NULL,
    compliant BOOLEAN NOT NULL,
    supersedes_id BIGINT UNIQUE REFERENCES purchases (id),
    created_by BIGINT REFERENCES users (id),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK (product_id IS NOT NULL OR description IS NOT NULL)
);
CREATE INDEX purchases_organisation ON purchases (organisation_code);
CREATE INDEX purchases_product ON purchases (product_id);

CREATE TABLE purchase_declarations (
    purchase_id BIGINT NOT NULL REFERENCES purchases (id),
    requirement_id BIGINT NOT NULL REFERENCES requirements (id),
    met BOOLEAN NOT NULL,
    evidence TEXT,
    PRIMARY KEY (purchase_id, requirement_id)
);

CREATE TABLE advisories (
    id INTEGER PRIMARY KEY NOT NULL,
    reference TEXT NOT NULL UNIQUE CHECK (length(reference) > 0),
    title TEXT NOT NULL CHECK (length(title) > 0),
    severity TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    published_at TIMESTAMP NOT NULL,
    remediation TEXT NOT NULL,
    links TEXT NOT NULL DEFAULT '[]',
    source TEXT,
    revision BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE advisory_products (
    advisory_id BIGINT NOT NULL REFERENCES advisories (id),
    product_id BIGINT NOT NULL REFERENCES products (id),
    PRIMARY KEY (advisory_id, product_id)
);

CREATE TABLE advisory_responses (
    advisory_id BIGINT NOT NULL REFERENCES advisories (id),
    organisation_code TEXT NOT NULL REFERENCES organisations (code),
    acknowledged_at TIMESTAMP,
    applicable BOOLEAN,
    applicability_reason TEXT,
    closed_at TIMESTAMP,
    remediation_note TEXT,
    PRIMARY KEY (advisory_id, organisation_code),
    CHECK (closed_at IS NULL OR acknowledged_at IS NOT NULL)
);

CREATE TABLE risk_acceptances (
    id INTEGER PRIMARY KEY NOT NULL,
    organisation_code TEXT NOT NULL REFERENCES organisations (code),
    product_id BIGINT NOT NULL REFERENCES products (id),
    compensating_controls TEXT NOT NULL CHECK (length(compensating_controls) > 0),
    mds2_reference TEXT,
    expires_on DATE NOT NULL,
    created_by BIGINT REFERENCES users (id),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Append-only: the triggers below refuse every UPDATE and DELETE. No foreign keys, so that
-- an audit event can never be blocked (or removed by a cascade) by the entity it describes.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    actor_user_id BIGINT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    organisation_code TEXT,
    before_state TEXT,
    after_state TEXT,
    request_id TEXT
);
CREATE INDEX audit_events_entity ON audit_events (entity, entity_id);
CREATE INDEX audit_events_occurred ON audit_events (occurred_at);
CREATE INDEX audit_events_actor ON audit_events (actor_user_id);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
