-- MCP servers added at runtime (the management API and the admin UI), served beside
-- config.yaml's `mcp_servers`. `entry` is the server's entry in config.yaml's shape, its
-- credentials (auth value, env values, static header values) sealed by the application.
CREATE TABLE mcp_servers (
    name       TEXT PRIMARY KEY,
    entry      TEXT NOT NULL,
    created_by TEXT,
    updated_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
