-- The contracting authority that bought the agreement (NHS Purchasing and Supply Agency, NHS
-- Connecting for Health, Crown Commercial Service, NHS Digital, NHS England...). Null when the
-- record does not say; the OCDS export then names the catalogue's publisher.
ALTER TABLE agreements ADD COLUMN buyer TEXT;
