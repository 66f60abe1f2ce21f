-- Requests for products the catalogue does not list yet (issue 22): an organisation whose search
-- found nothing asks the national team to add the product. A request waits until the national
-- team marks it added, naming the product now in the catalogue, or declines it with a reason; the
-- organisation may withdraw it while it waits. The lengths are the data layer's bounds
-- (db::product_requests), checked here too.
CREATE TABLE product_requests (
    id INTEGER PRIMARY KEY NOT NULL,
    organisation_code TEXT NOT NULL REFERENCES organisations (code),
    product_name TEXT NOT NULL CHECK (length(product_name) BETWEEN 1 AND 200),
    supplier TEXT NOT NULL CHECK (length(supplier) BETWEEN 1 AND 200),
    version TEXT CHECK (version IS NULL OR length(version) BETWEEN 1 AND 100),
    -- Why the organisation needs it.
    need TEXT NOT NULL CHECK (length(need) BETWEEN 1 AND 2000),
    -- What the organisation searched for that found nothing, when it asked from a search.
    search_text TEXT CHECK (search_text IS NULL OR length(search_text) BETWEEN 1 AND 200),
    status TEXT NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'added', 'declined', 'withdrawn')),
    -- The product now in the catalogue, once added.
    product_id BIGINT REFERENCES products (id),
    -- Why it was declined.
    reason TEXT CHECK (reason IS NULL OR length(reason) BETWEEN 1 AND 2000),
    requested_by BIGINT REFERENCES users (id),
    requested_at TIMESTAMP NOT NULL,
    decided_by BIGINT REFERENCES users (id),
    decided_at TIMESTAMP,
    CHECK ((status = 'added') = (product_id IS NOT NULL)),
    CHECK ((status = 'declined') = (reason IS NOT NULL)),
    CHECK ((status = 'waiting') = (decided_at IS NULL))
);
CREATE INDEX product_requests_organisation ON product_requests (organisation_code, id);
CREATE INDEX product_requests_waiting ON product_requests (id) WHERE status = 'waiting';
