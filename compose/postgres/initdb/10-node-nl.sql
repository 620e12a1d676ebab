-- Run by the postgres image once, on an empty data volume (after it made POSTGRES_DB,
-- the hubs' database): the NL node's own database. The node and the hub could share one
-- (their tables and version tables differ), but two NPPOs' systems do not share a store.
CREATE DATABASE ephyto_node_nl OWNER ephyto;
