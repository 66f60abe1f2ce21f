DROP INDEX ods_successions_status;
DROP TABLE ods_successions;
