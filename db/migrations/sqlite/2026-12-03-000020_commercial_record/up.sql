-- An agreement's commercial record (issue 16): what it is worth, who resells it, the framework
-- lot, the initial term and the published notices. The value is an integer in the currency's
-- minor unit (pence for GBP): integers add up exactly on both engines, and the bound (10^14
-- pence, a thousand billion pounds) keeps any sum of agreements far inside 64 bits.
ALTER TABLE agreements ADD COLUMN value_minor BIGINT CHECK (value_minor IS NULL OR value_minor BETWEEN 0 AND 100000000000000);
ALTER TABLE agreements ADD COLUMN currency TEXT NOT NULL DEFAULT 'GBP' CHECK (length(currency) = 3 AND currency NOT GLOB '*[^A-Z]*');
ALTER TABLE agreements ADD COLUMN reseller_id BIGINT REFERENCES suppliers (id);
ALTER TABLE agreements ADD COLUMN framework_lot TEXT;
ALTER TABLE agreements ADD COLUMN initial_term_months INTEGER CHECK (initial_term_months IS NULL OR initial_term_months BETWEEN 1 AND 1200);
-- A JSON array of addresses of published notices (contract notices, award notices, variations).
ALTER TABLE agreements ADD COLUMN notice_urls TEXT NOT NULL DEFAULT '[]';
-- The public documents behind the commercial facts.
ALTER TABLE agreements ADD COLUMN commercial_source TEXT;

-- An option to extend an agreement: a length, the date by which it must be decided, and the
-- decision once taken (the date decided may be unpublished even when the decision is known).
CREATE TABLE agreement_extensions (
    id INTEGER PRIMARY KEY NOT NULL,
    agreement_id BIGINT NOT NULL REFERENCES agreements (id),
    months INTEGER NOT NULL CHECK (months BETWEEN 1 AND 1200),
    decide_by DATE NOT NULL,
    decision TEXT CHECK (decision IS NULL OR decision IN ('taken', 'declined')),
    decided_on DATE,
    source TEXT,
    CHECK (decided_on IS NULL OR decision IS NOT NULL)
);
CREATE INDEX agreement_extensions_agreement ON agreement_extensions (agreement_id);
-- The decisions coming up: undecided options by date.
CREATE INDEX agreement_extensions_undecided ON agreement_extensions (decide_by) WHERE decision IS NULL;
