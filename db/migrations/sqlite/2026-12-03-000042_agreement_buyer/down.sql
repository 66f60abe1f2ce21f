ALTER TABLE agreements DROP COLUMN buyer;
