"""Point-in-time recovery: the primary's binary log archived continuously to object storage in
another region, base backups on a schedule, and `drctl restore` to a moment or a GTID.

binlog_events (reading raw binlog bytes), sealing (client-side encryption and checksums), bucket
(the S3-compatible object store), manifest (what the archive holds), archiver and base_backup (the
writers, run on the DR replica's host), restore (the reader), command (`drctl restore`,
`drctl archive`). docs/backups.md explains the whole.
"""
