-- Lifecycle per release: a product is what is licensed (Windows 11 Enterprise); its releases
-- (24H2, LTSC 2024) carry the support dates, as Microsoft and endoflife.date publish them.
CREATE TABLE releases (
    id INTEGER PRIMARY KEY NOT NULL,
    product_id BIGINT NOT NULL REFERENCES products (id),
    name TEXT NOT NULL CHECK (length(name) > 0),
    released_on DATE,
    active_support_ends_on DATE,
    security_support_ends_on DATE,
    -- Paid extended security updates (Windows 10 22H2: 2028-10-10), where they exist.
    extended_updates_end_on DATE,
    source TEXT,
    revision BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (product_id, name),
    CHECK (active_support_ends_on IS NULL OR security_support_ends_on IS NULL
           OR active_support_ends_on <= security_support_ends_on),
    CHECK (extended_updates_end_on IS NULL OR security_support_ends_on IS NULL
           OR security_support_ends_on <= extended_updates_end_on)
);

-- Where a product's releases come from: an endoflife.date product and one of its release
-- cycles, named in the catalogue as `release_name`. Admins edit it; `lifecycle sync` reads it.
CREATE TABLE lifecycle_sources (
    id INTEGER PRIMARY KEY NOT NULL,
    product_id BIGINT NOT NULL REFERENCES products (id),
    release_name TEXT NOT NULL CHECK (length(release_name) > 0),
    eol_product TEXT NOT NULL CHECK (length(eol_product) > 0 AND eol_product NOT GLOB '*[^a-z0-9.-]*'),
    eol_release TEXT NOT NULL CHECK (length(eol_release) > 0),
    UNIQUE (product_id, release_name),
    UNIQUE (product_id, eol_product, eol_release)
);

-- A synced date that moved by more than a year waits here for an admin, instead of applying.
CREATE TABLE lifecycle_holds (
    id INTEGER PRIMARY KEY NOT NULL,
    release_id BIGINT NOT NULL REFERENCES releases (id),
    field TEXT NOT NULL CHECK (field IN ('released_on', 'active_support_ends_on',
        'security_support_ends_on', 'extended_updates_end_on')),
    current_value DATE,
    proposed_value DATE,
    source TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'rejected')),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    decided_at TIMESTAMP
);
CREATE INDEX lifecycle_holds_pending ON lifecycle_holds (status, release_id);

-- The product that replaces this one (Windows 10 Enterprise -> Windows 11 Enterprise).
ALTER TABLE products ADD COLUMN successor_id BIGINT REFERENCES products (id);

-- The product-level dates are kept, and copied into one release per product that has any,
-- so that nothing known before releases existed is lost.
INSERT INTO releases (product_id, name, released_on, active_support_ends_on, security_support_ends_on, source)
SELECT id, CASE WHEN version = '' THEN 'all' ELSE version END, released_on,
       mainstream_support_ends_on, COALESCE(extended_support_ends_on, mainstream_support_ends_on),
       'the product''s own dates, before releases were held (migration 2026-12-03-000010)'
FROM products
WHERE mainstream_support_ends_on IS NOT NULL OR extended_support_ends_on IS NOT NULL;
