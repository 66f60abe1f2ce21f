DROP TABLE software_name_mappings;
DROP TABLE estate_unmatched;
DROP TABLE estate_items;
DROP TABLE estate_snapshots;
