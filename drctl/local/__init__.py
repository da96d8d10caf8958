"""Throwaway servers on loopback (MariaDB, HAProxy, an S3 server, the edge Worker under Node) and
the ports and processes they run on: the rehearsal's stand-in cloud and `drctl restore`'s local target."""
