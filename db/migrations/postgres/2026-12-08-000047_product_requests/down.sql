DROP TABLE product_requests;
