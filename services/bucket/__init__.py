"""The only place that talks to S3: client set-up, error classification, and the object contract
(keys, conflict keys, metadata names, verification, catalog, lifecycle rule, IAM policy)."""
