DROP TABLE webhook_allowed_hosts;
DROP TABLE email_digests;
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
DROP TABLE subscriptions;
DROP TABLE outbox_events;
